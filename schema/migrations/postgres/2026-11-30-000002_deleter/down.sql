DROP INDEX IF EXISTS batch_uploads_userid_idx;
DROP TABLE IF EXISTS weft_deleted_collections;
