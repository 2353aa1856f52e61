# Sourced by the mysql image's entrypoint on the first start (an empty data directory), after
# 01-schema.sql (dataflows/schema.sql). Creates the two users of the stack; the passwords come
# from the container's environment (docker-compose.yml, .env).

docker_process_sql <<SQL
-- Users are not replicated data: keep them out of the binlog Debezium reads.
SET SESSION sql_log_bin = 0;

-- Debezium's MySQL connector (the privileges its documentation lists, LOCK TABLES for snapshots).
CREATE USER 'debezium'@'%' IDENTIFIED BY '${MYSQL_DEBEZIUM_PASSWORD}';
GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, REPLICATION CLIENT
    ON *.* TO 'debezium'@'%';

-- cdcflow reading the binlog itself (run --mysql), with the server's default authentication
-- (caching_sha2_password) over TLS (MySQL 8.4 makes its own certificate; --mysql-ssl-mode
-- preferred uses it).
CREATE USER 'cdcflow'@'%' IDENTIFIED BY '${MYSQL_CDCFLOW_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'cdcflow'@'%';
GRANT SELECT ON orders.* TO 'cdcflow'@'%';
GRANT SELECT ON warehouse.* TO 'cdcflow'@'%';
GRANT SELECT ON logistics.* TO 'cdcflow'@'%';
SQL
