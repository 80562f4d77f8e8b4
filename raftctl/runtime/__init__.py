"""Threads, processes and the wall clock: the parts of raftctl that are not pure.

``cluster.Cluster`` (a Simulation with a lock and wall-clock pacing), ``pacer.Pacer`` (the one
pacer: runs a simulation against the wall clock), ``collector.MetricsCollector`` (the sampling
loop and sink workers around the pure sample builder) and ``chaos_pool`` (campaigns over a
process pool).
"""
