# envs/cn-north-1 with every setting of the environment given a value other than its default, so
# that the inventory shows each one reaching the plan: nothing set in tfvars is ignored.
# (test_environments.py requires this file to name every variable but profile, dist_dir and
# existing_tables and existing_tables_capture, which the existing-tables scenarios set against a
# simulated account.)
tags                = { project = "ddb-replication", team = "data" }
tables              = { "user-cn" = { hash_key = "PK", billing_mode = "PROVISIONED", read_capacity = 5, write_capacity = 5, capture = "kinesis" } }
table_map           = { "user-sg" = "user-cn" }
deletion_protection = false
ttl_deletes         = "skip"

peer_proxy_url           = "http://54.222.3.4:3128"
peer_endpoint_url        = "https://kinesis.ap-southeast-1.amazonaws.com"
peer_writer_source_cidrs = ["52.74.1.2/32"]

signing_keys_parameter   = "/Other/SigningKeys"
max_clock_skew_seconds   = 120
accept_unsigned_changes  = true
version_unit             = "seconds"
signing_keys_ttl_seconds = 60

replication_stream_shard_count     = 2
replication_stream_retention_hours = 168
failure_queue_retention_seconds    = 864000
capture_stream_shard_count         = 3
capture_stream_retention_hours     = 720

lambda_architecture          = "x86_64"
memory_size                  = 1024
timeout_seconds              = 120
log_retention_days           = 90
peer_credentials_ttl_seconds = 600
peer_connect_timeout_seconds = 5
peer_read_timeout_seconds    = 20
tombstone_ttl_seconds        = 2592000
sender_concurrency           = 8
replicator_concurrency       = 64
sender_mapping               = { batch_size = 200, maximum_batching_window_in_seconds = 1 }
replicator_mapping           = { parallelization_factor = 5, starting_position = "LATEST" }
vpc_subnet_ids               = ["subnet-0a1b2c3d4e5f60001"]
vpc_security_group_ids       = ["sg-0a1b2c3d4e5f60001"]

kms_key_administrators   = ["arn:aws-cn:iam::123456789012:role/KeyAdmins"]
kms_deletion_window_days = 7

alarm_emails                      = ["ops@example.com"]
alarm_actions                     = ["arn:aws-cn:sns:cn-north-1:123456789012:pager"]
iterator_age_alarm_ms             = 300000
replication_lag_alarm_ms          = 30000
heartbeat_alarm_ms                = 240000
failure_message_age_alarm_seconds = 432000

proxy = {
  vpc_id               = "vpc-0a1b2c3d4e5f60001"
  subnet_id            = "subnet-0a1b2c3d4e5f60003"
  allowed_source_cidrs = ["52.74.1.2/32"]
  port                 = 8443
  ami_id               = "ami-0a1b2c3d4e5f60789"
  name                 = "replication-proxy"
  instance_type        = "t3.small"
}
