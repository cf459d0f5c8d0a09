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

  # Alarm name -> what it watches. Each fires when the statistic stays above the threshold
  # for all of its evaluation periods.
  alarms = merge(
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
    # The replicator's own metric (EMF, namespace DynamoDBReplication): peer write to apply here.
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
  )
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
  treat_missing_data  = "notBreaching"
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
