"""Where the dev cluster's objects live.

- `store`       the working set in memory; every write gets a resourceVersion, is persisted before
                it is acknowledged and becomes an `Event` for subscribers (watch, GC, controllers).
- `persistence` where writes go: SQLite (WAL) behind one writer thread, or nowhere (in-memory).
- `meta`        metadata rules shared by the store and the API: timestamps, resource keys, uids.

Data flows  api/writes → controllers/objects → store → persistence;  store → subscribers.
"""
