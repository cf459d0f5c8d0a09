# Alarms on what says replication is falling behind or losing changes, sent to one topic, and
# a dashboard of the same figures.
resource "aws_sns_topic" "alarms" {
  name              = "ddb-replication-alarms"
  kms_master_key_id = aws_kms_key.node.arn
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)

  # The replicator's refusals (EMF, namespace DynamoDBReplication, service=replicator): each is a
  # change it will never apply, so one is worth a look. Metric -> what it means.
  rejections = {
    RejectedUnsigned      = "changes without a signature (a sender of an older release, or a forgery; see accept_unsigned_changes)"
    RejectedSignature     = "changes whose signature doesn't verify (a key ring out of step between the regions, or a forgery)"
    RejectedOrigin        = "changes claiming an origin other than ${var.peer_region}"
    RejectedVersion       = "changes whose version disagrees with their item"
    RejectedFutureVersion = "changes stamped more than ${var.max_clock_skew_seconds} s ahead of its clock"
  }

  # Alarm name -> what it watches. Each fires when the statistic stays above the threshold for
  # all of its evaluation periods. Missing data counts as fine unless an alarm says otherwise.
  alarm_table = merge(
    # A function's backlog: the age of the oldest record in its last batch.
    { for function, f in local.functions : "${f.name}-iterator-age" => {
      description = "The ${function} is more than ${var.iterator_age_alarm_ms / 1000} s behind its stream."
      namespace   = "AWS/Lambda"
      metric      = "IteratorAge"
      dimensions  = { FunctionName = aws_lambda_function.function[function].function_name }
      statistic   = "Maximum"
      period      = 60
      periods     = 5
      threshold   = var.iterator_age_alarm_ms
    } },
    { for function, f in local.functions : "${f.name}-errors" => {
      description = "The ${function} failed whole invocations (its mapping retries them)."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = aws_lambda_function.function[function].function_name }
      statistic   = "Sum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
    # The mapping could not hand a failed batch to its on-failure queue: that batch is lost
    # unless the stream still holds it.
    { for function, f in local.functions : "${f.name}-destination-delivery-failures" => {
      description = "The ${function}'s mapping could not send a failed batch to ${f.failure_queue}: check the queue and the role, then verify --repair."
      namespace   = "AWS/Lambda"
      metric      = "DestinationDeliveryFailures"
      dimensions  = { FunctionName = aws_lambda_function.function[function].function_name }
      statistic   = "Sum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
    { for function, f in local.functions : "${f.name}-throttles" => {
      description = "Lambda throttled the ${function} (account or function concurrency): its backlog grows."
      namespace   = "AWS/Lambda"
      metric      = "Throttles"
      dimensions  = { FunctionName = aws_lambda_function.function[function].function_name }
      statistic   = "Sum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
    # Anything in a failure queue is a change that did not replicate: redrive it.
    { for function, f in local.functions : "${f.failure_queue}-not-empty" => {
      description = "${f.failure_queue} holds changes the ${function} gave up on: redrive them."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.failures[function].name }
      statistic   = "Maximum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
    # ... and one that has waited this long is at risk: SQS drops it at the queue's retention.
    { for function, f in local.functions : "${f.failure_queue}-oldest-message-age" => {
      description = "A message in ${f.failure_queue} has waited over ${var.failure_message_age_alarm_seconds / 86400} days; SQS drops it after ${var.failure_queue_retention_seconds / 86400}: redrive now."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = aws_sqs_queue.failures[function].name }
      statistic   = "Maximum"
      period      = 300
      periods     = 1
      threshold   = var.failure_message_age_alarm_seconds
    } },
    # The replicator's own metrics (EMF, namespace DynamoDBReplication): peer write to apply here.
    { "${var.replicator_function_name}-replication-lag" = {
      description = "Changes from ${var.peer_region} take more than ${var.replication_lag_alarm_ms / 1000} s to apply here."
      namespace   = "DynamoDBReplication"
      metric      = "ReplicationLag"
      dimensions  = { service = "replicator" }
      statistic   = "Maximum"
      period      = 60
      periods     = 5
      threshold   = var.replication_lag_alarm_ms
    } },
    # The peer's sender ships a heartbeat every minute; its age here says the whole path works.
    # No heartbeat at all is the worst case, so missing data breaches.
    { "${var.replicator_function_name}-heartbeat" = {
      description = "No heartbeat from ${var.peer_region} newer than ${var.heartbeat_alarm_ms / 1000} s: replication from there has stopped (its sender, the link, its keys, or this replicator)."
      namespace   = "DynamoDBReplication"
      metric      = "HeartbeatAge"
      dimensions  = { service = "replicator" }
      statistic   = "Maximum"
      period      = 60
      periods     = 5
      threshold   = var.heartbeat_alarm_ms
      missing     = "breaching"
    } },
    { for metric, meaning in local.rejections : "${var.replicator_function_name}-${local.alarm_suffixes[metric]}" => {
      description = "The replicator refused ${meaning}; the change is in ${var.replicator_failure_queue_name}."
      namespace   = "DynamoDBReplication"
      metric      = metric
      dimensions  = { service = "replicator" }
      statistic   = "Sum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
    { "${var.sender_function_name}-future-versions-clamped" = {
      description = "Local writes were stamped more than ${var.max_clock_skew_seconds} s ahead of the sender's clock (an application's clock, or a bad timestamp) and shipped at a clamped version."
      namespace   = "DynamoDBReplication"
      metric      = "FutureVersionsClamped"
      dimensions  = { service = "sender" }
      statistic   = "Sum"
      period      = 300
      periods     = 1
      threshold   = 0
    } },
  )
  alarm_suffixes = {
    RejectedUnsigned      = "rejected-unsigned"
    RejectedSignature     = "rejected-signature"
    RejectedOrigin        = "rejected-origin"
    RejectedVersion       = "rejected-version"
    RejectedFutureVersion = "rejected-future-version"
  }
  alarms = {
    for name, alarm in local.alarm_table : name => merge({ missing = "notBreaching" }, alarm)
  }
}

resource "aws_cloudwatch_metric_alarm" "replication" {
  for_each = local.alarms

  alarm_name          = each.key
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

locals {
  sender_name     = aws_lambda_function.function["sender"].function_name
  replicator_name = aws_lambda_function.function["replicator"].function_name
  dashboard_widgets = [
    {
      title   = "Replication lag (ms), ${var.peer_region} -> ${local.region}"
      metrics = [["DynamoDBReplication", "ReplicationLag", "service", "replicator", { stat = "Maximum" }]]
    },
    {
      title   = "Heartbeat age (ms), ${var.peer_region} -> ${local.region}"
      metrics = [["DynamoDBReplication", "HeartbeatAge", "service", "replicator", { stat = "Maximum" }]]
    },
    {
      title = "Changes"
      metrics = [
        ["DynamoDBReplication", "Shipped", "service", "sender", { stat = "Sum" }],
        ["DynamoDBReplication", "Replicated", "service", "replicator", { stat = "Sum" }],
        ["DynamoDBReplication", "Stale", "service", "replicator", { stat = "Sum" }],
        ["DynamoDBReplication", "EchoesDropped", "service", "sender", { stat = "Sum" }],
      ]
    },
    {
      title = "Iterator age (ms)"
      metrics = [
        ["AWS/Lambda", "IteratorAge", "FunctionName", local.sender_name, { stat = "Maximum" }],
        ["AWS/Lambda", "IteratorAge", "FunctionName", local.replicator_name, { stat = "Maximum" }],
      ]
    },
    {
      title = "Failures"
      metrics = [
        ["DynamoDBReplication", "Poison", "service", "sender", { stat = "Sum" }],
        ["DynamoDBReplication", "Poison", "service", "replicator", { stat = "Sum" }],
        ["DynamoDBReplication", "Failed", "service", "sender", { stat = "Sum" }],
        ["DynamoDBReplication", "Failed", "service", "replicator", { stat = "Sum" }],
        ["AWS/Lambda", "Errors", "FunctionName", local.sender_name, { stat = "Sum" }],
        ["AWS/Lambda", "Errors", "FunctionName", local.replicator_name, { stat = "Sum" }],
      ]
    },
    {
      title = "Failure queues (messages)"
      metrics = [
        for function in keys(local.functions) :
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.failures[function].name, { stat = "Maximum" }]
      ]
    },
    {
      title = "Peer link"
      metrics = [
        ["DynamoDBReplication", "ShipRetries", "service", "sender", { stat = "Sum" }],
        ["DynamoDBReplication", "PeerCredentialRefreshes", "service", "sender", { stat = "Sum" }],
      ]
    },
    {
      title = "Refused and clamped changes"
      metrics = concat(
        [for metric in keys(local.rejections) : ["DynamoDBReplication", metric, "service", "replicator", { stat = "Sum" }]],
        [["DynamoDBReplication", "FutureVersionsClamped", "service", "sender", { stat = "Sum" }]],
      )
    },
  ]
}

resource "aws_cloudwatch_dashboard" "replication" {
  dashboard_name = "ddb-replication-${local.region}"
  dashboard_body = jsonencode({
    widgets = [
      for i, widget in local.dashboard_widgets : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          metrics = widget.metrics
          region  = local.region
          view    = "timeSeries"
          period  = 60
        }
      }
    ]
  })
}
