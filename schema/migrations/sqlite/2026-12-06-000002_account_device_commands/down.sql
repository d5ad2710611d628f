DROP TABLE IF EXISTS account_device_commands;
