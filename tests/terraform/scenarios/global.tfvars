region      = "ap-southeast-1"
table_name  = "user-sg"
stream_name = "ddb_replication_stream_sg"
