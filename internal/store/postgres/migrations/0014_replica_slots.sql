-- 0011: numbered slots leased by the replicas sharing this database, the
-- stable identity of their consumer sessions on an external MQTT broker
-- (store.ReplicaSlots). A row whose lease expired is vacant: its sessions
-- wait for a replica to resume or drain them.
CREATE TABLE replica_slots (
    slot       integer PRIMARY KEY,
    owner      text NOT NULL,
    -- the sessions' client ids are "{client_base}-s{slot}-c{i}"
    client_base text NOT NULL,
    expires_at timestamptz NOT NULL
);
