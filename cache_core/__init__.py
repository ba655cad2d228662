"""DiT Cache's engine: everything that is not UI, in rooms that import only the rooms below them
(support, adapters, stand_ins, policies, run; then attachment, profiles, speeds; then
calibration). docs/ARCHITECTURE.md draws them."""
