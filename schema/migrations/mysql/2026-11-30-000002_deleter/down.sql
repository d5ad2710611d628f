DROP INDEX batch_uploads_userid_idx ON batch_uploads;
DROP TABLE IF EXISTS weft_deleted_collections;
