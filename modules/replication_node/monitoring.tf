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
}

# A function's backlog: the age of the oldest record in its last batch.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = local.functions

  alarm_name          = "${each.value.name}-iterator-age"
  alarm_description   = "The ${each.key} is more than ${var.iterator_age_alarm_ms / 1000} s behind its stream."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = local.functions

  alarm_name          = "${each.value.name}-errors"
  alarm_description   = "The ${each.key} failed whole invocations (its mapping retries them)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Anything in a failure queue is a change that did not replicate: redrive it.
resource "aws_cloudwatch_metric_alarm" "failure_queue" {
  for_each = local.functions

  alarm_name          = "${each.value.failure_queue}-not-empty"
  alarm_description   = "${each.value.failure_queue} holds changes the ${each.key} gave up on: redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.failures[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# From the replicator's own metrics (EMF, namespace DynamoDBReplication): write in the peer
# region to apply here.
resource "aws_cloudwatch_metric_alarm" "replication_lag" {
  alarm_name          = "${var.replicator_function_name}-replication-lag"
  alarm_description   = "Changes from ${var.peer_region} take more than ${var.replication_lag_alarm_ms / 1000} s to apply here."
  namespace           = "DynamoDBReplication"
  metric_name         = "ReplicationLag"
  dimensions          = { service = "replicator" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.replication_lag_alarm_ms
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
