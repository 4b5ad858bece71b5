"""Distributed lock managers (Redis, Redlock, ZooKeeper) and the throwaway servers they test on."""
