# envs/ap-southeast-1 with its one table captured through Kinesis into a provisioned capture
# stream, kept the default 7 days.
tables = {
  "user-sg" = { hash_key = "PK", capture = "kinesis" }
}
capture_stream_shard_count = 2
