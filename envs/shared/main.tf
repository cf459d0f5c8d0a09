# One side of the replication: this region's node and, optionally, the proxy the peer's sender
# reaches this region's Kinesis through. Names default to defaults.json's, which the local
# emulator uses too.
#
# Shared, through symlinks, by envs/cn-north-1 and envs/ap-southeast-1; each names its region
# in its own region.tf. Run Terraform in those directories, not here.
locals {
  defaults = jsondecode(file("${path.module}/../../defaults.json"))
  names    = local.defaults.regions[local.region]
}

provider "aws" {
  region  = local.region
  profile = var.profile

  default_tags {
    tags = var.tags
  }
}

module "node" {
  source = "../../modules/replication_node"

  # What is replicated. Names come from defaults.json, unless the tfvars say otherwise.
  # Null: defaults.json's tables, less those another configuration manages. (Two maps merged
  # rather than a conditional, which would unify the tfvars' map with the defaults' shape.)
  tables = merge(
    {
      for name in var.tables == null ? local.names.tables : [] :
      name => { hash_key = "PK" } if !contains(var.existing_tables, name)
    },
    var.tables == null ? {} : var.tables,
  )
  existing_tables         = var.existing_tables
  existing_tables_capture = var.existing_tables_capture
  table_map               = coalesce(var.table_map, local.names.table_map)
  deletion_protection     = var.deletion_protection
  ttl_deletes             = var.ttl_deletes
  peer_region             = local.names.peer_region
  peer_replication_stream = local.names.peer_replication_stream
  peer_credentials_prefix = local.names.peer_credentials_prefix

  peer_proxy_url           = var.peer_proxy_url
  peer_endpoint_url        = var.peer_endpoint_url
  peer_writer_source_cidrs = var.peer_writer_source_cidrs

  signing_keys_parameter   = coalesce(var.signing_keys_parameter, local.defaults.signing_keys_parameter)
  max_clock_skew_seconds   = var.max_clock_skew_seconds
  accept_unsigned_changes  = var.accept_unsigned_changes
  version_unit             = var.version_unit
  signing_keys_ttl_seconds = var.signing_keys_ttl_seconds

  replication_stream_name            = local.names.replication_stream
  replication_stream_shard_count     = var.replication_stream_shard_count
  replication_stream_retention_hours = var.replication_stream_retention_hours
  capture_stream_name                = local.names.capture_stream
  capture_stream_shard_count         = var.capture_stream_shard_count
  capture_stream_retention_hours     = var.capture_stream_retention_hours
  stats_table_name                   = local.names.stats_table
  tombstone_table_name               = local.names.tombstone_table
  sender_failure_queue_name          = local.names.sender_failure_queue
  replicator_failure_queue_name      = local.names.replicator_failure_queue
  failure_queue_retention_seconds    = var.failure_queue_retention_seconds

  dist_dir                     = coalesce(var.dist_dir, "../../dist")
  lambda_source_dir            = "../../lambda"
  lambda_runtime               = local.defaults.lambda_runtime
  lambda_architecture          = var.lambda_architecture
  memory_size                  = var.memory_size
  timeout_seconds              = var.timeout_seconds
  log_retention_days           = var.log_retention_days
  peer_credentials_ttl_seconds = var.peer_credentials_ttl_seconds
  peer_connect_timeout_seconds = var.peer_connect_timeout_seconds
  peer_read_timeout_seconds    = var.peer_read_timeout_seconds
  tombstone_ttl_seconds        = var.tombstone_ttl_seconds
  sender_concurrency           = var.sender_concurrency
  replicator_concurrency       = var.replicator_concurrency
  sender_mapping               = var.sender_mapping
  replicator_mapping           = var.replicator_mapping
  vpc_subnet_ids               = var.vpc_subnet_ids
  vpc_security_group_ids       = var.vpc_security_group_ids

  kms_key_administrators   = var.kms_key_administrators
  kms_deletion_window_days = var.kms_deletion_window_days

  alarm_emails                      = var.alarm_emails
  alarm_actions                     = var.alarm_actions
  iterator_age_alarm_ms             = var.iterator_age_alarm_ms
  replication_lag_alarm_ms          = var.replication_lag_alarm_ms
  heartbeat_alarm_ms                = var.heartbeat_alarm_ms
  failure_message_age_alarm_seconds = var.failure_message_age_alarm_seconds
}

module "proxy" {
  source = "../../modules/proxy_host"
  count  = var.proxy == null ? 0 : 1

  vpc_id               = var.proxy.vpc_id
  subnet_id            = var.proxy.subnet_id
  allowed_source_cidrs = var.proxy.allowed_source_cidrs
  port                 = var.proxy.port
  ami_id               = var.proxy.ami_id
  name                 = var.proxy.name
  instance_type        = var.proxy.instance_type
  kinesis_region       = local.region
  kms_key_arn          = module.node.kms_key_arn
  alarm_actions        = concat([module.node.alarm_topic_arn], var.alarm_actions)
}
