DROP TABLE IF EXISTS weft_user_moves;
