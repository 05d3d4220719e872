"""A simulated Asterisk (AMI + FastAGI peer + callees) for tests and `ivr demo`.

It behaves like the recordings in shared/asterisk-transcripts/; where it disagrees with them, it
is wrong. Typical use:

    sim = SimulatedAsterisk(book_from_mapping({"79161234567": Callee(keys=[KeyPress("1")])}),
                            users={"ivr": "secret"}, speed=50)
    await sim.start()            # AMI on 127.0.0.1:sim.ami_port
    ...                          # Originate with IVR_AGI_URL / IVR_SCRIPT / IVR_CALL_ID variables
    await sim.wait_idle(10)
    sim.calls                    # list[CallRecord]
    await sim.stop()
"""

from ivr.sim.asterisk import SimulatedAsterisk
from ivr.sim.population import random_population, random_population_with_personas
from ivr.sim.scenario import Callee, CallRecord, KeyPress, ScenarioBook, book_from_mapping

__all__ = [
    "Callee",
    "CallRecord",
    "KeyPress",
    "ScenarioBook",
    "SimulatedAsterisk",
    "book_from_mapping",
    "random_population",
    "random_population_with_personas",
]
