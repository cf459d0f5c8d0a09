# The sender (this region's table streams -> the peer's Kinesis stream) and the replicator
# (this region's Kinesis stream -> this region's tables), with their mappings.
locals {
  # The functions' own settings, set only when given (null: the function's default).
  tuning = {
    sender = {
      PEER_CREDENTIALS_TTL_SECONDS = var.peer_credentials_ttl_seconds
      PEER_CONNECT_TIMEOUT_SECONDS = var.peer_connect_timeout_seconds
      PEER_READ_TIMEOUT_SECONDS    = var.peer_read_timeout_seconds
      TOMBSTONE_TTL_SECONDS        = var.tombstone_ttl_seconds
      SENDER_CONCURRENCY           = var.sender_concurrency
      SIGNING_KEYS_TTL_SECONDS     = var.signing_keys_ttl_seconds
    }
    replicator = {
      TOMBSTONE_TTL_SECONDS    = var.tombstone_ttl_seconds
      REPLICATOR_CONCURRENCY   = var.replicator_concurrency
      SIGNING_KEYS_TTL_SECONDS = var.signing_keys_ttl_seconds
    }
  }
  tuned = {
    for function, settings in local.tuning : function => {
      for name, value in settings : name => tostring(value) if value != null
    }
  }

  environment = {
    sender = merge(
      {
        PEER_REGION             = var.peer_region
        PEER_STREAM_NAME        = var.peer_replication_stream
        PEER_CREDENTIALS_PREFIX = var.peer_credentials_prefix
        TOMBSTONE_TABLE         = aws_dynamodb_table.bookkeeping["tombstones"].name
        FAILURE_QUEUE_URL       = aws_sqs_queue.failures["sender"].url
        TTL_DELETES             = var.ttl_deletes
        SIGNING_KEYS_PARAMETER  = var.signing_keys_parameter
        MAX_CLOCK_SKEW_SECONDS  = tostring(var.max_clock_skew_seconds)
        VERSION_UNIT            = var.version_unit
      },
      var.peer_endpoint_url == null ? {} : { PEER_ENDPOINT_URL = var.peer_endpoint_url },
      var.peer_proxy_url == null ? {} : { PEER_PROXY_URL = var.peer_proxy_url },
      local.tuned.sender,
    )
    # PEER_REGION: the only origin the replicator accepts a change from.
    replicator = merge(
      {
        PEER_REGION             = var.peer_region
        TABLE_MAP               = jsonencode(var.table_map)
        STATS_TABLE             = aws_dynamodb_table.bookkeeping["stats"].name
        TOMBSTONE_TABLE         = aws_dynamodb_table.bookkeeping["tombstones"].name
        FAILURE_QUEUE_URL       = aws_sqs_queue.failures["replicator"].url
        SIGNING_KEYS_PARAMETER  = var.signing_keys_parameter
        MAX_CLOCK_SKEW_SECONDS  = tostring(var.max_clock_skew_seconds)
        ACCEPT_UNSIGNED_CHANGES = tostring(var.accept_unsigned_changes)
        VERSION_UNIT            = var.version_unit
      },
      local.tuned.replicator,
    )
  }
  in_vpc = length(var.vpc_subnet_ids) > 0
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.node.arn
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name    = each.value.name
  description      = "DynamoDB replication ${each.key} (${local.region} <-> ${var.peer_region})"
  role             = aws_iam_role.function[each.key].arn
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  handler          = "${each.key}.lambda_handler"
  filename         = local.builds[each.key].zip
  source_code_hash = local.builds[each.key].zip_hash
  memory_size      = var.memory_size
  timeout          = var.timeout_seconds

  environment {
    variables = local.environment[each.key]
  }

  # Continue traces that callers started; the functions start none of their own.
  tracing_config {
    mode = "PassThrough"
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.build_errors[each.key]) == 0
      error_message = join(" ", local.build_errors[each.key])
    }
    precondition {
      condition     = local.in_vpc == (length(var.vpc_security_group_ids) > 0)
      error_message = "Set vpc_subnet_ids and vpc_security_group_ids together (both empty: no VPC)."
    }
    precondition {
      condition     = alltrue([for local_table in values(var.table_map) : contains(keys(local.replicated_tables), local_table)])
      error_message = "Every table_map value must be one of this node's tables (${join(", ", keys(local.replicated_tables))})."
    }
  }

  # The log group first, so it is the one that has the retention and the key; the permissions
  # first, so the first invocation can use them.
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}

# Each table's DynamoDB stream feeds the sender, or, for the tables with kinesis capture, the
# one capture stream does (for a table with capture "both", both do); this region's replication
# stream feeds the replicator.
locals {
  mappings = merge(
    { for name, table in local.replicated_tables : "sender/${name}" => {
      function = "sender"
      source   = table.stream_arn
      settings = var.sender_mapping
    } if table.capture != "kinesis" },
    # Retried until the capture stream's retention runs out (no attempt or record-age limit):
    # a batch given up on sooner would be a change lost, or left for an operator, after an
    # outage the retention outlasts. A record that can never be shipped is not retried: the
    # sender isolates it in the failure queue itself and reports the batch done.
    { for stream in aws_kinesis_stream.capture : "capture" => {
      function = "sender"
      source   = stream.arn
      settings = merge(var.sender_mapping, { maximum_record_age_in_seconds = -1, maximum_retry_attempts = -1 })
    } },
    { replicator = {
      function = "replicator"
      source   = aws_kinesis_stream.replication.arn
      settings = var.replicator_mapping
    } },
  )
}

# TRIM_HORIZON by default: a mapping created after the table's first writes, or recreated, still
# sees everything the stream holds, and replaying a change is harmless (versions decide).
resource "aws_lambda_event_source_mapping" "stream" {
  for_each = local.mappings

  event_source_arn                   = each.value.source
  function_name                      = aws_lambda_function.function[each.value.function].arn
  starting_position                  = each.value.settings.starting_position
  batch_size                         = each.value.settings.batch_size
  parallelization_factor             = each.value.settings.parallelization_factor
  maximum_retry_attempts             = each.value.settings.maximum_retry_attempts
  maximum_record_age_in_seconds      = each.value.settings.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = each.value.settings.bisect_batch_on_function_error
  maximum_batching_window_in_seconds = each.value.settings.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failures[each.value.function].arn
    }
  }
}
