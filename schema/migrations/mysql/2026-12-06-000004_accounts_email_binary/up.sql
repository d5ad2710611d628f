-- Emails compare byte for byte (issue 20): the server stores one form (lower-case, NFC) and
-- looks accounts up by it, but the table's default utf8mb4 collation is case- and
-- accent-insensitive, so `andre@x` found `andré@x`'s account and each variant had its own
-- rate-limit bucket. SQLite's `=` and PostgreSQL's default collation already compare exactly.
ALTER TABLE accounts MODIFY email VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE account_invites MODIFY email VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL;
