DROP TABLE IF EXISTS account_password_changes;
