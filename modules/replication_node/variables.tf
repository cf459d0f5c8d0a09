# ---------------------------------------------------------------- what is replicated, and to where

variable "tables" {
  description = "The replicated tables in this region, by name, with their key schema (any schema; the peer's tables must have the same keys). Types are S, N or B. On-demand unless billing_mode is PROVISIONED."
  type = map(object({
    hash_key       = string
    hash_key_type  = optional(string, "S")
    range_key      = optional(string)
    range_key_type = optional(string, "S")
    billing_mode   = optional(string, "PAY_PER_REQUEST")
    read_capacity  = optional(number)
    write_capacity = optional(number)
    ttl_attribute  = optional(string)
  }))
  validation {
    condition     = length(var.tables) > 0
    error_message = "tables must name at least one table, e.g. { \"user-cn\" = { hash_key = \"PK\" } }."
  }
  validation {
    condition = alltrue(flatten([
      for t in values(var.tables) : [contains(["S", "N", "B"], t.hash_key_type), contains(["S", "N", "B"], t.range_key_type)]
    ]))
    error_message = "Key attribute types must be S, N or B."
  }
  validation {
    condition = alltrue([
      for t in values(var.tables) : contains(["PAY_PER_REQUEST", "PROVISIONED"], t.billing_mode) && (
        t.billing_mode == "PAY_PER_REQUEST" || (t.read_capacity != null && t.write_capacity != null)
      )
    ])
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED, and PROVISIONED needs read_capacity and write_capacity."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the node's tables."
  type        = bool
  default     = true
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
  description = "What the sender does with deletes made by DynamoDB TTL: replicate (default) or skip."
  type        = string
  default     = "replicate"
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
  description = "Shards of the replication stream. Null: on-demand capacity."
  type        = number
  default     = null
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
  description = "How long failure messages wait for a redrive. Default: 14 days, SQS's maximum."
  type        = number
  default     = 1209600
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
  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of each function, in MB (CPU grows with it; both run worker threads)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Timeout of each function (the seed's one minute)."
  type        = number
  default     = 60
}

variable "sender_mapping" {
  description = "The DynamoDB stream -> sender event source mapping. Defaults are the seed's."
  type = object({
    batch_size                         = optional(number, 500)
    parallelization_factor             = optional(number, 10)
    maximum_retry_attempts             = optional(number, 300)
    maximum_record_age_in_seconds      = optional(number, 86400)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_batching_window_in_seconds = optional(number, 0)
    starting_position                  = optional(string, "TRIM_HORIZON")
  })
  default = {}
}

variable "replicator_mapping" {
  description = "The Kinesis stream -> replicator event source mapping. Defaults are the seed's."
  type = object({
    batch_size                         = optional(number, 500)
    parallelization_factor             = optional(number, 10)
    maximum_retry_attempts             = optional(number, 100)
    maximum_record_age_in_seconds      = optional(number, 86400)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_batching_window_in_seconds = optional(number, 0)
    starting_position                  = optional(string, "TRIM_HORIZON")
  })
  default = {}
}

variable "vpc_subnet_ids" {
  description = "Private subnets to run both functions in (they need a NAT or endpoints to reach AWS APIs and the peer). Empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups of the functions when they run in a VPC."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------- monitoring

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "More ARNs to notify on alarm, besides the module's topic."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when a function's stream iterator age (its backlog) stays above this."
  type        = number
  default     = 120000
}

variable "replication_lag_alarm_ms" {
  description = "Alarm when the replicator's ReplicationLag (source write to apply) stays above this."
  type        = number
  default     = 60000
}

variable "heartbeat_alarm_ms" {
  description = "Alarm when the newest heartbeat from the peer is older than this for 5 minutes, or none arrives at all (the peer's sender sends one a minute)."
  type        = number
  default     = 180000
  validation {
    condition     = var.heartbeat_alarm_ms >= 60000
    error_message = "heartbeat_alarm_ms must be at least 60000: heartbeats are a minute apart."
  }
}

variable "failure_message_age_alarm_seconds" {
  description = "Alarm when a failure queue's oldest message has waited longer than this (default 7 days), well before the queue's retention (14 days) drops it."
  type        = number
  default     = 604800
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
  description = "Waiting period before the node's KMS key is deleted after a destroy."
  type        = number
  default     = 30
}
