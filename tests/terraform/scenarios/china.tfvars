region      = "cn-north-1"
table_name  = "user-cn"
stream_name = "ddb_replication_stream_cn"
