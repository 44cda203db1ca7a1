"""The node core: what a batch server decides and writes, step by step, with no threads, no I/O and no clock reads.

The pykka actors of a real server and the simulator's virtual-time processes drive the same objects through the
ports in `ports`, so the simulator checks the product's own step code.
"""
