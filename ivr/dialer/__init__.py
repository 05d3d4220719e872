"""The dialer: who may be called now, atomic claims, pacing over Asterisk servers, results.

Pure policy (no I/O, time passed in): `windows`, `limits`, `ladder.decide`, `retry`, over a
`policy.Rules` snapshot. Database side: `selector`, `claims`, `attempts`, `reconcile`,
`ladder.advance_cases`. Runtime: `engine.Dialer` and `scheduler.build_scheduler`.
"""
