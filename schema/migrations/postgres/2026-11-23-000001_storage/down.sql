DROP TABLE IF EXISTS batch_upload_items;
DROP TABLE IF EXISTS batch_uploads;
DROP TABLE IF EXISTS user_collections;
DROP TABLE IF EXISTS collections;
DROP TABLE IF EXISTS bso;
