# ---------------------------------------------------------------- what is replicated, and to where

variable "tables" {
  description = "The replicated tables this node creates, by name, with their key schema (any schema; the peer's tables must have the same keys) and secondary indexes. Key types are S, N or B. billing_mode PAY_PER_REQUEST (the default) or PROVISIONED, which needs read_capacity and write_capacity, for the table and for each global index. global_secondary_indexes and local_secondary_indexes are keyed by index name; projection_type is ALL (the default), KEYS_ONLY or INCLUDE, and only INCLUDE takes non_key_attributes (at least one). A local index needs the table's range_key; at most 5 per table. Declare every index a table has: an index left out would be dropped (global) or the table replaced (local) after a terraform import. capture is how the sender reads the table's changes: dynamodb_streams (the default: the table's DynamoDB stream, records kept 24 hours, creation times in whole seconds) kinesis (Kinesis Data Streams for DynamoDB into the node's capture stream: creation times in microseconds, kept capture_stream_retention_hours), or both (the two at once, each change read twice: the step between the other two, so that switching a live table loses nothing; apply both, wait until the capture stream's mapping has caught up, then apply the new mode). Tables that another configuration manages go in existing_tables instead."
  type = map(object({
    hash_key       = string
    hash_key_type  = optional(string, "S")
    range_key      = optional(string)
    range_key_type = optional(string, "S")
    billing_mode   = optional(string, "PAY_PER_REQUEST")
    read_capacity  = optional(number)
    write_capacity = optional(number)
    ttl_attribute  = optional(string)
    capture        = optional(string, "dynamodb_streams")
    global_secondary_indexes = optional(map(object({
      hash_key           = string
      hash_key_type      = optional(string, "S")
      range_key          = optional(string)
      range_key_type     = optional(string, "S")
      projection_type    = optional(string, "ALL")
      non_key_attributes = optional(list(string))
      read_capacity      = optional(number)
      write_capacity     = optional(number)
    })), {})
    local_secondary_indexes = optional(map(object({
      range_key          = string
      range_key_type     = optional(string, "S")
      projection_type    = optional(string, "ALL")
      non_key_attributes = optional(list(string))
    })), {})
  }))
  default  = {}
  nullable = false
  validation {
    condition = alltrue(flatten([
      for t in values(var.tables) : [
        contains(["S", "N", "B"], t.hash_key_type),
        contains(["S", "N", "B"], t.range_key_type),
        [for i in values(t.global_secondary_indexes) : contains(["S", "N", "B"], i.hash_key_type) && contains(["S", "N", "B"], i.range_key_type)],
        [for i in values(t.local_secondary_indexes) : contains(["S", "N", "B"], i.range_key_type)],
      ]
    ]))
    error_message = "Key attribute types (of tables and of their indexes) must be S, N or B."
  }
  validation {
    condition = alltrue([
      for t in values(var.tables) : contains(["PAY_PER_REQUEST", "PROVISIONED"], t.billing_mode) && (
        t.billing_mode == "PAY_PER_REQUEST" || (t.read_capacity != null && t.write_capacity != null)
      )
    ])
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED, and PROVISIONED needs read_capacity and write_capacity."
  }
  validation {
    condition = alltrue(flatten([
      for t in values(var.tables) : [
        for i in values(t.global_secondary_indexes) : (t.billing_mode == "PROVISIONED") == (i.read_capacity != null && i.write_capacity != null) && (t.billing_mode == "PROVISIONED" || (i.read_capacity == null && i.write_capacity == null))
      ]
    ]))
    error_message = "A global secondary index of a PROVISIONED table needs read_capacity and write_capacity; one of a PAY_PER_REQUEST table takes neither."
  }
  validation {
    condition = alltrue(flatten([
      for t in values(var.tables) : [
        for i in concat(values(t.global_secondary_indexes), values(t.local_secondary_indexes)) :
        contains(["ALL", "KEYS_ONLY", "INCLUDE"], i.projection_type) && (i.projection_type == "INCLUDE") == (length(coalesce(i.non_key_attributes, [])) > 0)
      ]
    ]))
    error_message = "An index's projection_type must be ALL, KEYS_ONLY or INCLUDE, and non_key_attributes (at least one) go with INCLUDE only."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : contains(["dynamodb_streams", "kinesis", "both"], t.capture)])
    error_message = "A table's capture must be \"dynamodb_streams\", \"kinesis\" or \"both\" (the step between the two when switching)."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : length(t.local_secondary_indexes) == 0 || (t.range_key != null && length(t.local_secondary_indexes) <= 5)])
    error_message = "Local secondary indexes need the table to have a range_key, and a table has at most 5."
  }
  validation {
    condition = alltrue([
      for t in values(var.tables) : alltrue([
        for name, types in {
          for key in concat(
            [{ name = t.hash_key, type = t.hash_key_type }],
            t.range_key == null ? [] : [{ name = t.range_key, type = t.range_key_type }],
            flatten([for i in values(t.global_secondary_indexes) : concat(
              [{ name = i.hash_key, type = i.hash_key_type }],
              i.range_key == null ? [] : [{ name = i.range_key, type = i.range_key_type }],
            )]),
            [for i in values(t.local_secondary_indexes) : { name = i.range_key, type = i.range_key_type }],
          ) : key.name => key.type...
        } : length(distinct(types)) == 1
      ])
    ])
    error_message = "An attribute that keys a table and its indexes has one type: give it the same hash_key_type / range_key_type everywhere."
  }
}

variable "existing_tables" {
  description = "Tables to replicate that another configuration manages (the application's own Terraform, say), by name. They are read with the aws_dynamodb_table data source, never created, changed or destroyed here: the sender reads their streams, both functions write them, and with a customer managed key the functions may decrypt with it. Each needs a stream of view type NEW_AND_OLD_IMAGES, or the plan fails saying how to turn one on, unless existing_tables_capture gives it kinesis capture."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = length(var.existing_tables) == length(distinct(var.existing_tables)) && alltrue([for name in var.existing_tables : length(name) > 0])
    error_message = "existing_tables must name each table once."
  }
  validation {
    condition     = length(var.tables) + length(var.existing_tables) > 0
    error_message = "Name at least one table to replicate: in tables (created here), e.g. { \"user-cn\" = { hash_key = \"PK\" } }, or in existing_tables (managed elsewhere)."
  }
  validation {
    condition     = length(setintersection(var.existing_tables, keys(var.tables))) == 0
    error_message = "A table is either created here (tables) or managed elsewhere (existing_tables), not both: ${join(", ", setintersection(var.existing_tables, keys(var.tables)))}."
  }
}

variable "existing_tables_capture" {
  description = "How the sender reads each existing table's changes, by table name: dynamodb_streams (the default for a table not named here), kinesis or both (the step between the two when switching), as tables' capture. The module enables the Kinesis streaming destination on the table itself, even though it doesn't manage the table; a table with kinesis capture needs no DynamoDB stream (with both it still does)."
  type        = map(string)
  default     = {}
  nullable    = false
  validation {
    condition     = alltrue([for capture in values(var.existing_tables_capture) : contains(["dynamodb_streams", "kinesis", "both"], capture)])
    error_message = "existing_tables_capture's values must be \"dynamodb_streams\", \"kinesis\" or \"both\" (the step between the two when switching)."
  }
  validation {
    condition     = length(setsubtract(keys(var.existing_tables_capture), var.existing_tables)) == 0
    error_message = "existing_tables_capture names tables that aren't in existing_tables: ${join(", ", setsubtract(keys(var.existing_tables_capture), var.existing_tables))}. Give a created table its capture in tables."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the tables the node creates (the replicated ones, replicator_stats, replication_tombstones). README \"Uninstalling\" says how to remove a region on purpose."
  type        = bool
  default     = true
  nullable    = false
}

variable "table_map" {
  description = "For the replicator: each peer table's name, mapped to the table here that receives its changes."
  type        = map(string)
}

variable "peer_region" {
  description = "The other side of the border: the region whose Kinesis stream the sender writes to (e.g. ap-southeast-1 for a cn-north-1 node)."
  type        = string
}

variable "peer_replication_stream" {
  description = "The peer region's replication stream, which this region's sender writes to."
  type        = string
}

variable "peer_credentials_prefix" {
  description = "Parameter Store path holding the peer account's writer keys, as <prefix>AccessKey and <prefix>SecretKey."
  type        = string
  validation {
    condition     = startswith(var.peer_credentials_prefix, "/") && endswith(var.peer_credentials_prefix, "/")
    error_message = "peer_credentials_prefix must start and end with \"/\", e.g. /DDBReplication/TableSG/."
  }
}

variable "signing_keys_parameter" {
  description = "Parameter Store name of the change-signing key ring (defaults.json's signing_keys_parameter), the same in both regions. The sender signs every change with it and the replicator verifies; tools/signing_keys.py creates it, never Terraform."
  type        = string
  validation {
    condition     = can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.signing_keys_parameter))
    error_message = "signing_keys_parameter must be a Parameter Store path such as /DDBReplication/SigningKeys (starting with \"/\", not ending with one)."
  }
}

variable "max_clock_skew_seconds" {
  description = "How far ahead of a function's clock a version may be. The replicator rejects a change stamped further ahead (RejectedFutureVersion); the sender ships a local write stamped further ahead at a clamped version (FutureVersionsClamped)."
  type        = number
  default     = 300
  nullable    = false
  validation {
    condition     = var.max_clock_skew_seconds >= 1 && floor(var.max_clock_skew_seconds) == var.max_clock_skew_seconds
    error_message = "max_clock_skew_seconds must be a whole number of seconds, at least 1."
  }
}

variable "version_unit" {
  description = "The unit applications stamp last_update_timestamp in, the same in both regions: milliseconds (whole epoch milliseconds, this project's writer contract) or seconds (epoch seconds, fractions allowed: the original sample's Decimal(time.time())). Choose it once, before the first write: the stored versions of both regions' tables and tombstones are compared in it."
  type        = string
  default     = "milliseconds"
  nullable    = false
  validation {
    condition     = contains(["milliseconds", "seconds"], var.version_unit)
    error_message = "version_unit must be \"milliseconds\" or \"seconds\"."
  }
}

variable "accept_unsigned_changes" {
  description = "Let the replicator apply changes that carry no signature (counted, not rejected). Only for a rolling upgrade from a release whose senders did not sign; turn it off once both regions run this release."
  type        = bool
  default     = false
  nullable    = false
}

variable "peer_endpoint_url" {
  description = "Override of the peer's Kinesis endpoint (e.g. a VPC endpoint's DNS name). Null: the public endpoint of peer_region."
  type        = string
  default     = null
}

variable "peer_proxy_url" {
  description = "HTTPS proxy the sender reaches the peer through (the peer's modules/proxy_host, as http://<eip>:<port>). Null: direct. Needs vpc_subnet_ids: the proxy admits only the NAT addresses the sender leaves from."
  type        = string
  default     = null
  validation {
    condition     = var.peer_proxy_url == null || length(var.vpc_subnet_ids) > 0
    error_message = "peer_proxy_url needs vpc_subnet_ids (and vpc_security_group_ids): outside a VPC the sender leaves from Lambda's shared addresses, which the peer's proxy doesn't admit. Run the functions in private subnets behind the NAT gateways whose EIPs the proxy allows."
  }
}

variable "peer_writer_source_cidrs" {
  description = "The addresses the peer's senders reach this region from (their NAT gateways' EIPs, or the proxy's), as CIDRs. When set, the peer writer's key can put records only from them (an aws:SourceIp condition). Empty: from anywhere. Leave empty if the senders reach Kinesis through a VPC endpoint, where aws:SourceIp doesn't apply."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = alltrue([for c in var.peer_writer_source_cidrs : can(cidrhost(c, 0))])
    error_message = "peer_writer_source_cidrs must be CIDRs, e.g. [\"52.80.1.2/32\"]."
  }
  validation {
    condition     = !anytrue([for c in var.peer_writer_source_cidrs : can(cidrhost(c, 0)) && endswith(c, "/0")])
    error_message = "peer_writer_source_cidrs must not hold 0.0.0.0/0 or ::/0: a condition that admits every address is pointless. Leave the list empty for no address condition."
  }
}

variable "ttl_deletes" {
  description = "What the sender does with deletes made by DynamoDB TTL (TTL_DELETES): replicate (default) or skip."
  type        = string
  default     = "replicate"
  nullable    = false
  validation {
    condition     = contains(["replicate", "skip"], var.ttl_deletes)
    error_message = "ttl_deletes must be \"replicate\" or \"skip\"."
  }
}

# ---------------------------------------------------------------- names

variable "replication_stream_name" {
  description = "This region's replication stream: the peer's sender writes into it, the replicator here reads it."
  type        = string
}

variable "replication_stream_shard_count" {
  description = "Shards of the replication stream, a whole number of at least 1. Null: on-demand capacity."
  type        = number
  default     = null
  validation {
    condition     = var.replication_stream_shard_count == null || try(var.replication_stream_shard_count >= 1 && floor(var.replication_stream_shard_count) == var.replication_stream_shard_count, false)
    error_message = "replication_stream_shard_count must be a whole number of at least 1, or null for on-demand capacity."
  }
}

variable "replication_stream_retention_hours" {
  description = "How long the replication stream keeps records, 24 to 8760 hours. The default, 72, outlasts a replicator broken over a long weekend: its mapping gives up on records after a day, and tools/ops.py redrive can replay them only while the stream still holds them. Beyond 24 hours, retention is billed extra (README)."
  type        = number
  default     = 72
  nullable    = false
  validation {
    condition     = var.replication_stream_retention_hours >= 24 && var.replication_stream_retention_hours <= 8760 && floor(var.replication_stream_retention_hours) == var.replication_stream_retention_hours
    error_message = "replication_stream_retention_hours must be a whole number from 24 to 8760 (365 days)."
  }
}

variable "capture_stream_name" {
  description = "The node's capture stream: every table with kinesis (or both) capture writes its changes into it (Kinesis Data Streams for DynamoDB), and the sender reads it. Created only when a table has such capture, which then needs this name."
  type        = string
  default     = null
  validation {
    condition     = var.capture_stream_name != null || !anytrue(concat([for t in values(var.tables) : contains(["kinesis", "both"], t.capture)], [for capture in values(var.existing_tables_capture) : contains(["kinesis", "both"], capture)]))
    error_message = "A table has kinesis (or both) capture: set capture_stream_name (defaults.json's capture_stream), the stream its changes go into."
  }
}

variable "capture_stream_shard_count" {
  description = "Shards of the capture stream, a whole number of at least 1. Null: on-demand capacity. A provisioned stream must take every captured table's peak writes (1 MB/s or 1,000 records/s a shard), or DynamoDB is throttled writing into it and capture falls behind."
  type        = number
  default     = null
  validation {
    condition     = var.capture_stream_shard_count == null || try(var.capture_stream_shard_count >= 1 && floor(var.capture_stream_shard_count) == var.capture_stream_shard_count, false)
    error_message = "capture_stream_shard_count must be a whole number of at least 1, or null for on-demand capacity."
  }
}

variable "capture_stream_retention_hours" {
  description = "How long the capture stream keeps the tables' changes, 24 to 8760 hours. The default, 168 (7 days), outlasts a border outage of days: the sender's mapping on it retries until the retention runs out (no attempt or record-age limit), so it resumes from where it stopped with nothing for an operator to redrive. Beyond 24 hours, retention is billed extra."
  type        = number
  default     = 168
  nullable    = false
  validation {
    condition     = var.capture_stream_retention_hours >= 24 && var.capture_stream_retention_hours <= 8760 && floor(var.capture_stream_retention_hours) == var.capture_stream_retention_hours
    error_message = "capture_stream_retention_hours must be a whole number from 24 to 8760 (365 days)."
  }
}

variable "stats_table_name" {
  description = "Table of per-table replication counters."
  type        = string
  default     = "replicator_stats"
}

variable "tombstone_table_name" {
  description = "Table of recent deletes' versions (expire through TTL)."
  type        = string
  default     = "replication_tombstones"
}

variable "sender_failure_queue_name" {
  description = "On-failure destination of the sender's mapping, and where it puts poison records."
  type        = string
}

variable "replicator_failure_queue_name" {
  description = "On-failure destination of the replicator's mapping, and where it puts poison records."
  type        = string
}

variable "failure_queue_retention_seconds" {
  description = "How long failure messages wait for a redrive, 60 to 1209600 seconds. Default: 14 days, SQS's maximum."
  type        = number
  default     = 1209600
  nullable    = false
  validation {
    condition     = var.failure_queue_retention_seconds >= 60 && var.failure_queue_retention_seconds <= 1209600 && floor(var.failure_queue_retention_seconds) == var.failure_queue_retention_seconds
    error_message = "failure_queue_retention_seconds must be a whole number from 60 to 1209600 (14 days), what SQS keeps."
  }
}

variable "sender_function_name" {
  description = "Name of the sender function (the seed's ddb_send_to_kinesis)."
  type        = string
  default     = "ddb_send_to_kinesis"
}

variable "replicator_function_name" {
  description = "Name of the replicator function (the seed's replicator_ddb)."
  type        = string
  default     = "replicator_ddb"
}

variable "peer_writer_name" {
  description = "Name of the IAM user (and its group) whose access key the peer's sender uses to write into this region's stream."
  type        = string
  default     = "ddb-replication-peer-writer"
}

# ---------------------------------------------------------------- the functions

variable "dist_dir" {
  description = "Directory with the zips and manifest.json written by tools/build_lambdas.py."
  type        = string
}

variable "lambda_source_dir" {
  description = "The repository's lambda/ directory. When set, the plan fails if a zip is older than the source it was built from."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Lambda runtime the zips were built for (defaults.json's lambda_runtime)."
  type        = string
}

variable "lambda_architecture" {
  description = "x86_64 or arm64; must match the build (python tools/build_lambdas.py --architecture ...)."
  type        = string
  default     = "x86_64"
  nullable    = false
  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of each function, 128 to 10240 MB (CPU grows with it; both run worker threads)."
  type        = number
  default     = 512
  nullable    = false
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240, what Lambda allows."
  }
}

variable "timeout_seconds" {
  description = "Timeout of each function, up to 900 seconds (the seed's one minute). It must leave room for one PutRecords attempt: more than peer_connect_timeout_seconds + peer_read_timeout_seconds + 2."
  type        = number
  default     = 60
  nullable    = false
  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number of seconds from 1 to 900, what Lambda allows."
  }
  validation {
    condition     = var.timeout_seconds > coalesce(var.peer_connect_timeout_seconds, 3) + coalesce(var.peer_read_timeout_seconds, 10) + 2
    error_message = "timeout_seconds must exceed peer_connect_timeout_seconds + peer_read_timeout_seconds + 2 (3 + 10 + 2 unless set): the sender starts a PutRecords attempt only when that much time is left, so it would never ship a change."
  }
}

# ---------------------------------------------------------------- the functions' own settings
# Null: the variable isn't set, and the function uses its default (README "Function
# configuration"). The functions refuse a value below their minimum on the first invocation;
# these validations refuse it at plan time instead.

variable "peer_credentials_ttl_seconds" {
  description = "PEER_CREDENTIALS_TTL_SECONDS: how long the sender caches the peer's keys, in whole seconds, 0 or more. Null: the function's 300."
  type        = number
  default     = null
  validation {
    condition     = var.peer_credentials_ttl_seconds == null || try(var.peer_credentials_ttl_seconds >= 0 && floor(var.peer_credentials_ttl_seconds) == var.peer_credentials_ttl_seconds, false)
    error_message = "peer_credentials_ttl_seconds must be a whole number of seconds, 0 or more."
  }
}

variable "peer_connect_timeout_seconds" {
  description = "PEER_CONNECT_TIMEOUT_SECONDS: the connect timeout of one PutRecords attempt to the peer, in whole seconds, at least 1. Null: the function's 3."
  type        = number
  default     = null
  validation {
    condition     = var.peer_connect_timeout_seconds == null || try(var.peer_connect_timeout_seconds >= 1 && floor(var.peer_connect_timeout_seconds) == var.peer_connect_timeout_seconds, false)
    error_message = "peer_connect_timeout_seconds must be a whole number of seconds, at least 1."
  }
}

variable "peer_read_timeout_seconds" {
  description = "PEER_READ_TIMEOUT_SECONDS: the read timeout of one PutRecords attempt to the peer, in whole seconds, at least 1. Null: the function's 10."
  type        = number
  default     = null
  validation {
    condition     = var.peer_read_timeout_seconds == null || try(var.peer_read_timeout_seconds >= 1 && floor(var.peer_read_timeout_seconds) == var.peer_read_timeout_seconds, false)
    error_message = "peer_read_timeout_seconds must be a whole number of seconds, at least 1."
  }
}

variable "tombstone_ttl_seconds" {
  description = "TOMBSTONE_TTL_SECONDS, both functions: how long a delete's tombstone is kept, in whole seconds, at least 1. Keep it longer than anything can be replayed (the replication stream's retention). Null: the functions' 1209600 (14 days)."
  type        = number
  default     = null
  validation {
    condition     = var.tombstone_ttl_seconds == null || try(var.tombstone_ttl_seconds >= 1 && floor(var.tombstone_ttl_seconds) == var.tombstone_ttl_seconds, false)
    error_message = "tombstone_ttl_seconds must be a whole number of seconds, at least 1."
  }
}

variable "sender_concurrency" {
  description = "SENDER_CONCURRENCY: the sender's worker threads, a whole number of at least 1. Null: the function's 16."
  type        = number
  default     = null
  validation {
    condition     = var.sender_concurrency == null || try(var.sender_concurrency >= 1 && floor(var.sender_concurrency) == var.sender_concurrency, false)
    error_message = "sender_concurrency must be a whole number of at least 1."
  }
}

variable "replicator_concurrency" {
  description = "REPLICATOR_CONCURRENCY: the replicator's worker threads, applying different items in parallel, a whole number of at least 1. Null: the function's 32."
  type        = number
  default     = null
  validation {
    condition     = var.replicator_concurrency == null || try(var.replicator_concurrency >= 1 && floor(var.replicator_concurrency) == var.replicator_concurrency, false)
    error_message = "replicator_concurrency must be a whole number of at least 1."
  }
}

variable "signing_keys_ttl_seconds" {
  description = "SIGNING_KEYS_TTL_SECONDS, both functions: how long the signing key ring is cached, in whole seconds, 0 or more. Null: the functions' 300."
  type        = number
  default     = null
  validation {
    condition     = var.signing_keys_ttl_seconds == null || try(var.signing_keys_ttl_seconds >= 0 && floor(var.signing_keys_ttl_seconds) == var.signing_keys_ttl_seconds, false)
    error_message = "signing_keys_ttl_seconds must be a whole number of seconds, 0 or more."
  }
}

# ---------------------------------------------------------------- the mappings and the network

variable "sender_mapping" {
  description = "The DynamoDB stream -> sender event source mappings, one per table. Defaults are the seed's; an attribute left out keeps its default. batch_size 1 to 10000, parallelization_factor 1 to 10, maximum_retry_attempts -1 to 10000, maximum_record_age_in_seconds -1 or 60 to 604800, maximum_batching_window_in_seconds 0 to 300, starting_position TRIM_HORIZON or LATEST."
  type = object({
    batch_size                         = optional(number, 500)
    parallelization_factor             = optional(number, 10)
    maximum_retry_attempts             = optional(number, 300)
    maximum_record_age_in_seconds      = optional(number, 86400)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_batching_window_in_seconds = optional(number, 0)
    starting_position                  = optional(string, "TRIM_HORIZON")
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.sender_mapping.batch_size >= 1 && var.sender_mapping.batch_size <= 10000 && floor(var.sender_mapping.batch_size) == var.sender_mapping.batch_size
    error_message = "sender_mapping.batch_size must be a whole number from 1 to 10000."
  }
  validation {
    condition     = var.sender_mapping.parallelization_factor >= 1 && var.sender_mapping.parallelization_factor <= 10 && floor(var.sender_mapping.parallelization_factor) == var.sender_mapping.parallelization_factor
    error_message = "sender_mapping.parallelization_factor must be a whole number from 1 to 10."
  }
  validation {
    condition     = var.sender_mapping.maximum_retry_attempts >= -1 && var.sender_mapping.maximum_retry_attempts <= 10000 && floor(var.sender_mapping.maximum_retry_attempts) == var.sender_mapping.maximum_retry_attempts
    error_message = "sender_mapping.maximum_retry_attempts must be a whole number from -1 (retry until the record expires) to 10000."
  }
  validation {
    condition     = var.sender_mapping.maximum_record_age_in_seconds == -1 || (var.sender_mapping.maximum_record_age_in_seconds >= 60 && var.sender_mapping.maximum_record_age_in_seconds <= 604800 && floor(var.sender_mapping.maximum_record_age_in_seconds) == var.sender_mapping.maximum_record_age_in_seconds)
    error_message = "sender_mapping.maximum_record_age_in_seconds must be -1 (no limit) or a whole number from 60 to 604800."
  }
  validation {
    condition     = var.sender_mapping.maximum_batching_window_in_seconds >= 0 && var.sender_mapping.maximum_batching_window_in_seconds <= 300 && floor(var.sender_mapping.maximum_batching_window_in_seconds) == var.sender_mapping.maximum_batching_window_in_seconds
    error_message = "sender_mapping.maximum_batching_window_in_seconds must be a whole number from 0 to 300."
  }
  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.sender_mapping.starting_position)
    error_message = "sender_mapping.starting_position must be TRIM_HORIZON or LATEST."
  }
}

variable "replicator_mapping" {
  description = "The Kinesis stream -> replicator event source mapping. Defaults are the seed's; an attribute left out keeps its default. Valid values as for sender_mapping."
  type = object({
    batch_size                         = optional(number, 500)
    parallelization_factor             = optional(number, 10)
    maximum_retry_attempts             = optional(number, 100)
    maximum_record_age_in_seconds      = optional(number, 86400)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_batching_window_in_seconds = optional(number, 0)
    starting_position                  = optional(string, "TRIM_HORIZON")
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.replicator_mapping.batch_size >= 1 && var.replicator_mapping.batch_size <= 10000 && floor(var.replicator_mapping.batch_size) == var.replicator_mapping.batch_size
    error_message = "replicator_mapping.batch_size must be a whole number from 1 to 10000."
  }
  validation {
    condition     = var.replicator_mapping.parallelization_factor >= 1 && var.replicator_mapping.parallelization_factor <= 10 && floor(var.replicator_mapping.parallelization_factor) == var.replicator_mapping.parallelization_factor
    error_message = "replicator_mapping.parallelization_factor must be a whole number from 1 to 10."
  }
  validation {
    condition     = var.replicator_mapping.maximum_retry_attempts >= -1 && var.replicator_mapping.maximum_retry_attempts <= 10000 && floor(var.replicator_mapping.maximum_retry_attempts) == var.replicator_mapping.maximum_retry_attempts
    error_message = "replicator_mapping.maximum_retry_attempts must be a whole number from -1 (retry until the record expires) to 10000."
  }
  validation {
    condition     = var.replicator_mapping.maximum_record_age_in_seconds == -1 || (var.replicator_mapping.maximum_record_age_in_seconds >= 60 && var.replicator_mapping.maximum_record_age_in_seconds <= 604800 && floor(var.replicator_mapping.maximum_record_age_in_seconds) == var.replicator_mapping.maximum_record_age_in_seconds)
    error_message = "replicator_mapping.maximum_record_age_in_seconds must be -1 (no limit) or a whole number from 60 to 604800."
  }
  validation {
    condition     = var.replicator_mapping.maximum_batching_window_in_seconds >= 0 && var.replicator_mapping.maximum_batching_window_in_seconds <= 300 && floor(var.replicator_mapping.maximum_batching_window_in_seconds) == var.replicator_mapping.maximum_batching_window_in_seconds
    error_message = "replicator_mapping.maximum_batching_window_in_seconds must be a whole number from 0 to 300."
  }
  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.replicator_mapping.starting_position)
    error_message = "replicator_mapping.starting_position must be TRIM_HORIZON or LATEST."
  }
}

variable "vpc_subnet_ids" {
  description = "Private subnets to run both functions in (they need a NAT or endpoints to reach AWS APIs and the peer). Empty: no VPC."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "vpc_security_group_ids" {
  description = "Security groups of the functions when they run in a VPC."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, in days: one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653), or 0 to keep them forever."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retentions: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 days, or 0 (forever)."
  }
}

# ---------------------------------------------------------------- monitoring

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "alarm_actions" {
  description = "More ARNs to notify on alarm and on recovery (an SNS topic of the team's paging, say), besides the module's topic."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:[a-z-]+:[a-z0-9-]+:", arn))])
    error_message = "alarm_actions must be ARNs, e.g. arn:<partition>:sns:cn-north-1:111122223333:pager."
  }
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when a function's stream iterator age (its backlog) stays above this many ms, more than 0."
  type        = number
  default     = 120000
  nullable    = false
  validation {
    condition     = var.iterator_age_alarm_ms > 0
    error_message = "iterator_age_alarm_ms must be more than 0 ms."
  }
}

variable "replication_lag_alarm_ms" {
  description = "Alarm when the replicator's ReplicationLag (source write to apply) stays above this many ms, more than 0."
  type        = number
  default     = 60000
  nullable    = false
  validation {
    condition     = var.replication_lag_alarm_ms > 0
    error_message = "replication_lag_alarm_ms must be more than 0 ms."
  }
}

variable "heartbeat_alarm_ms" {
  description = "Alarm when the newest heartbeat from the peer is older than this for 5 minutes, or none arrives at all (the peer's sender sends one a minute)."
  type        = number
  default     = 180000
  nullable    = false
  validation {
    condition     = var.heartbeat_alarm_ms >= 60000
    error_message = "heartbeat_alarm_ms must be at least 60000: heartbeats are a minute apart."
  }
}

variable "failure_message_age_alarm_seconds" {
  description = "Alarm when a failure queue's oldest message has waited longer than this (default 7 days), well before the queue's retention (14 days) drops it."
  type        = number
  default     = 604800
  nullable    = false
  validation {
    condition     = var.failure_message_age_alarm_seconds > 0 && var.failure_message_age_alarm_seconds < var.failure_queue_retention_seconds
    error_message = "failure_message_age_alarm_seconds must be positive and below failure_queue_retention_seconds, or the alarm would fire only after SQS had dropped the message."
  }
}

variable "kms_key_administrators" {
  description = "IAM roles or users that administer the node's key (its policy, rotation, deletion), without being able to encrypt or decrypt with it. Empty: AWS's default key policy, the account's IAM policies decide. When set, the key policy grants use only to the functions, the peer writer (through Kinesis), the account through the node's services, CloudWatch Logs and alarms (kms.tf explains each)."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = alltrue([for arn in var.kms_key_administrators : can(regex("^arn:[a-z-]+:iam::[0-9]{12}:(role|user)/.+$", arn))])
    error_message = "kms_key_administrators must be IAM role or user ARNs, e.g. arn:<partition>:iam::111122223333:role/KeyAdmins."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the node's KMS key is deleted after a destroy, 7 to 30 days."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30 && floor(var.kms_deletion_window_days) == var.kms_deletion_window_days
    error_message = "kms_deletion_window_days must be a whole number from 7 to 30, what KMS allows."
  }
}
