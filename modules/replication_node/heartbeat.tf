# The heartbeat: every minute a schedule invokes the sender with {"replication": "heartbeat"},
# and the sender ships a heartbeat change to the peer the way it ships any change. The peer's
# replicator records it and emits HeartbeatAge (EMF, service=replicator), so the peer's
# <replicator>-heartbeat alarm fires when this region's changes stop arriving, even when no
# application writes anything: a silent pipeline is a broken one.
resource "aws_cloudwatch_event_rule" "heartbeat" {
  name                = "${var.sender_function_name}-heartbeat"
  description         = "Invokes the DynamoDB replication sender every minute to send a heartbeat to ${var.peer_region}"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "heartbeat" {
  rule      = aws_cloudwatch_event_rule.heartbeat.name
  target_id = "sender"
  arn       = aws_lambda_function.function["sender"].arn
  input     = jsonencode({ replication = "heartbeat" })
}

# EventBridge invokes the sender for this rule only.
resource "aws_lambda_permission" "heartbeat" {
  statement_id  = "HeartbeatSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["sender"].function_name
  principal     = data.aws_service_principal.events.name
  source_arn    = aws_cloudwatch_event_rule.heartbeat.arn
}
