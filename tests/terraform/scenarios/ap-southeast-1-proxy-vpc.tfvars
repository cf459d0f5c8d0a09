# envs/ap-southeast-1 with the options on: functions in private subnets, sending through the peer's
# proxy, and a proxy here for the peer's senders (only its NAT EIP may use it).
vpc_subnet_ids         = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
vpc_security_group_ids = ["sg-0a1b2c3d4e5f60001"]
peer_proxy_url         = "http://52.74.1.2:3128"
proxy = {
  vpc_id               = "vpc-0a1b2c3d4e5f60001"
  subnet_id            = "subnet-0a1b2c3d4e5f60003"
  allowed_source_cidrs = ["54.222.3.4/32"]
}
sender_mapping = { batch_size = 100 }
