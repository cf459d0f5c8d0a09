# Shared by envs/cn-north-1 and envs/ap-southeast-1 through symlinks (see main.tf).
#
# Every setting of modules/replication_node a deployment may choose is a variable here, passed
# through under the same name; the module validates them (its variables.tf, and its README's
# inputs table, give the valid values). Null, or an empty list: the module's default. The names
# of streams, queues and tables come from defaults.json, which the tools and the emulator read
# too (test_environments.py lists what stays internal, and why).

variable "profile" {
  description = "AWS CLI profile of this region's account. Null: the usual credential chain."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { project = "ddb-replication" }
}

# ---------------------------------------------------------------- what is replicated

variable "tables" {
  description = "The replicated tables this node creates, by name, with their keys and secondary indexes (see modules/replication_node: any key schema, the peer's tables with the same keys; key types S, N or B; billing_mode PAY_PER_REQUEST or PROVISIONED, which needs read_capacity and write_capacity for the table and each global index; projection_type ALL, KEYS_ONLY or INCLUDE with non_key_attributes; capture dynamodb_streams, kinesis, or both while switching between the two). Declare every index a table has before importing it. Null: defaults.json's tables, keyed on PK (S), except those named in existing_tables. An attribute left out takes the module's default."
  type = map(object({
    hash_key       = string
    hash_key_type  = optional(string)
    range_key      = optional(string)
    range_key_type = optional(string)
    billing_mode   = optional(string)
    read_capacity  = optional(number)
    write_capacity = optional(number)
    ttl_attribute  = optional(string)
    capture        = optional(string)
    global_secondary_indexes = optional(map(object({
      hash_key           = string
      hash_key_type      = optional(string)
      range_key          = optional(string)
      range_key_type     = optional(string)
      projection_type    = optional(string)
      non_key_attributes = optional(list(string))
      read_capacity      = optional(number)
      write_capacity     = optional(number)
    })))
    local_secondary_indexes = optional(map(object({
      range_key          = string
      range_key_type     = optional(string)
      projection_type    = optional(string)
      non_key_attributes = optional(list(string))
    })))
  }))
  default = null
}

variable "existing_tables" {
  description = "Tables to replicate that the application's own Terraform (or anything else) manages, by name: read, never created or changed here. Each needs a stream of view type NEW_AND_OLD_IMAGES."
  type        = list(string)
  default     = []
}

variable "existing_tables_capture" {
  description = "How the sender reads each existing table's changes, by table name: dynamodb_streams, kinesis, or both while switching between the two (a table left out: dynamodb_streams). With kinesis, the node enables the table's Kinesis streaming destination into its capture stream, and the table needs no DynamoDB stream."
  type        = map(string)
  default     = {}
}

variable "table_map" {
  description = "Each peer table, mapped to the table here that receives its changes. Null: defaults.json's."
  type        = map(string)
  default     = null
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the tables the node creates. Null: the module's true."
  type        = bool
  default     = null
}

variable "ttl_deletes" {
  description = "What the sender does with deletes made by DynamoDB TTL: replicate or skip. Null: the module's replicate."
  type        = string
  default     = null
}

# ---------------------------------------------------------------- the peer

variable "peer_proxy_url" {
  description = "The peer's proxy (its proxy_url output), if the sender goes through one. Needs vpc_subnet_ids."
  type        = string
  default     = null
}

variable "peer_endpoint_url" {
  description = "Override of the peer's Kinesis endpoint URL (a VPC endpoint's, say)."
  type        = string
  default     = null
}

variable "peer_writer_source_cidrs" {
  description = "The peer's senders' public addresses (NAT EIPs, or the proxy's EIP) as CIDRs, never 0.0.0.0/0 or ::/0: the peer writer's key then works from them only. Empty: from anywhere."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- signing

variable "signing_keys_parameter" {
  description = "Parameter Store name of the change-signing key ring, the same in both regions (a path such as /DDBReplication/SigningKeys). Null: defaults.json's signing_keys_parameter."
  type        = string
  default     = null
}

variable "max_clock_skew_seconds" {
  description = "How far ahead of the functions' clocks a version may be, in whole seconds, at least 1. Null: the module's 300."
  type        = number
  default     = null
}

variable "version_unit" {
  description = "The unit applications stamp last_update_timestamp in: \"milliseconds\" or \"seconds\" (the original sample's fractional epoch seconds). Set the same in both regions, before the first write. Null: the module's milliseconds."
  type        = string
  default     = null
}

variable "accept_unsigned_changes" {
  description = "Let the replicator apply unsigned changes: only during a rolling upgrade from a release whose senders did not sign. Turn it off once both regions are upgraded."
  type        = bool
  default     = false
}

variable "signing_keys_ttl_seconds" {
  description = "How long both functions cache the signing key ring, in whole seconds, 0 or more. Null: the functions' 300."
  type        = number
  default     = null
}

# ---------------------------------------------------------------- the stream and the queues

variable "replication_stream_shard_count" {
  description = "Shards of this region's replication stream, at least 1. Null: on-demand."
  type        = number
  default     = null
}

variable "replication_stream_retention_hours" {
  description = "How long this region's replication stream keeps records, 24 to 8760 hours (beyond 24, billed extra). Null: the module's 72."
  type        = number
  default     = null
}

variable "capture_stream_shard_count" {
  description = "Shards of the capture stream (created when a table has kinesis capture), at least 1. Null: on-demand."
  type        = number
  default     = null
}

variable "capture_stream_retention_hours" {
  description = "How long the capture stream keeps the tables' changes, 24 to 8760 hours (beyond 24, billed extra). Null: the module's 168 (7 days)."
  type        = number
  default     = null
}

variable "failure_queue_retention_seconds" {
  description = "How long the failure queues keep a message, 60 to 1209600 seconds. Null: the module's 1209600 (14 days)."
  type        = number
  default     = null
}

# ---------------------------------------------------------------- the functions

variable "dist_dir" {
  description = "Where tools/build_lambdas.py wrote the zips. Null: the repository's dist/."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "x86_64 or arm64, as built. Null: the module's x86_64."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory of each function, 128 to 10240 MB. Null: the module's 512."
  type        = number
  default     = null
}

variable "timeout_seconds" {
  description = "Timeout of each function, up to 900 seconds, and more than the peer's connect and read timeouts plus 2. Null: the module's 60."
  type        = number
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, ... 3653 days), or 0 for ever. Null: the module's 30."
  type        = number
  default     = null
}

variable "peer_credentials_ttl_seconds" {
  description = "How long the sender caches the peer's keys, in whole seconds, 0 or more. Null: the function's 300."
  type        = number
  default     = null
}

variable "peer_connect_timeout_seconds" {
  description = "Connect timeout of one PutRecords attempt to the peer, in whole seconds, at least 1. Null: the function's 3."
  type        = number
  default     = null
}

variable "peer_read_timeout_seconds" {
  description = "Read timeout of one PutRecords attempt to the peer, in whole seconds, at least 1. Null: the function's 10."
  type        = number
  default     = null
}

variable "tombstone_ttl_seconds" {
  description = "How long a delete's tombstone is kept, in whole seconds, at least 1; longer than the replication stream's retention. Null: the functions' 1209600 (14 days)."
  type        = number
  default     = null
}

variable "sender_concurrency" {
  description = "The sender's worker threads, at least 1. Null: the function's 16."
  type        = number
  default     = null
}

variable "replicator_concurrency" {
  description = "The replicator's worker threads, at least 1. Null: the function's 32."
  type        = number
  default     = null
}

variable "sender_mapping" {
  description = "Overrides of the sender's mapping settings: batch_size (1 to 10000), parallelization_factor (1 to 10), maximum_retry_attempts (-1 to 10000), maximum_record_age_in_seconds (-1, or 60 to 604800), bisect_batch_on_function_error, maximum_batching_window_in_seconds (0 to 300), starting_position (TRIM_HORIZON or LATEST). What is left out keeps the seed's setting."
  type = object({
    batch_size                         = optional(number)
    parallelization_factor             = optional(number)
    maximum_retry_attempts             = optional(number)
    maximum_record_age_in_seconds      = optional(number)
    bisect_batch_on_function_error     = optional(bool)
    maximum_batching_window_in_seconds = optional(number)
    starting_position                  = optional(string)
  })
  default = {}
}

variable "replicator_mapping" {
  description = "Overrides of the replicator's mapping settings, as for sender_mapping."
  type = object({
    batch_size                         = optional(number)
    parallelization_factor             = optional(number)
    maximum_retry_attempts             = optional(number)
    maximum_record_age_in_seconds      = optional(number)
    bisect_batch_on_function_error     = optional(bool)
    maximum_batching_window_in_seconds = optional(number)
    starting_position                  = optional(string)
  })
  default = {}
}

variable "vpc_subnet_ids" {
  description = "Private subnets for the functions. Empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups for the functions in a VPC (set with vpc_subnet_ids)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- the key

variable "kms_key_administrators" {
  description = "IAM role or user ARNs that administer the node's key but can't encrypt or decrypt with it (see modules/replication_node/kms.tf). Empty: AWS's default key policy."
  type        = list(string)
  default     = []
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the node's key is deleted after a destroy, 7 to 30 days. Null: the module's 30."
  type        = number
  default     = null
}

# ---------------------------------------------------------------- monitoring

variable "alarm_emails" {
  description = "Who gets the alarms by email (each address confirms its subscription)."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "More ARNs (an SNS topic of the team's paging, say) notified of every alarm, the proxy's recover alarm too, besides the node's topic."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when a function's iterator age stays above this many ms. Null: the module's 120000."
  type        = number
  default     = null
}

variable "replication_lag_alarm_ms" {
  description = "Alarm when the replicator's ReplicationLag stays above this many ms. Null: the module's 60000."
  type        = number
  default     = null
}

variable "heartbeat_alarm_ms" {
  description = "Alarm when the peer's newest heartbeat is older than this many ms, at least 60000. Null: the module's 180000."
  type        = number
  default     = null
}

variable "failure_message_age_alarm_seconds" {
  description = "Alarm when a failure queue's oldest message is older than this, below failure_queue_retention_seconds. Null: the module's 604800 (7 days)."
  type        = number
  default     = null
}

# ---------------------------------------------------------------- the proxy

variable "proxy" {
  description = "The optional squid proxy for the peer's sender (modules/proxy_host): where it runs, and the peer's NAT EIPs that may use it (never 0.0.0.0/0 or ::/0). port: not 80 or 443 (default 3128). ami_id pins its image (null: the newest Amazon Linux 2023 at creation, kept afterwards). name and instance_type: the module's ddb-replication-proxy and c6i.large unless set. Null: no proxy."
  type = object({
    vpc_id               = string
    subnet_id            = string
    allowed_source_cidrs = list(string)
    port                 = optional(number)
    ami_id               = optional(string)
    name                 = optional(string)
    instance_type        = optional(string)
  })
  default = null
}
