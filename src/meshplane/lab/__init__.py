"""The lab: two dev clusters on one machine with a node runtime each that runs Pods as processes."""
