"""Names shared between the dialer (AMI Originate variables), the shipped dialplan
(dialplan/ivr-robot.conf), the simulator and the call script. One place for each string."""

from __future__ import annotations

# Set on the channel by Originate (Variable: headers)
CALL_ID = "IVR_CALL_ID"  # our attempt's ActionID; also passed as AGI argument 1
AGI_URL = "IVR_AGI_URL"  # agi://host:port of the FastAGI server, without a path
SCRIPT = "IVR_SCRIPT"  # FastAGI route the dialplan calls, e.g. "debt-call"
LANGUAGE = "IVR_LANG"  # ru | uk | en
AMD_ENABLED = "IVR_AMD"  # "1" runs AMD() before the call script

# Set by Asterisk's AMD() application
AMD_STATUS = "AMDSTATUS"  # MACHINE | HUMAN | NOTSURE | HANGUP
AMD_CAUSE = "AMDCAUSE"

# Set by Asterisk's AGI() application when it returns
AGI_STATUS = "AGISTATUS"  # SUCCESS | FAILURE (e.g. FastAGI server unreachable) | NOTFOUND | HANGUP
AGI_FAILURE = "FAILURE"  # ami-agi-server-down.txt: connection refused, the script never ran

# FastAGI routes (the path of agi://host:port/<route>)
ROUTE_DEBT_CALL = "debt-call"
ROUTE_HANGUP = "call-ended"

# Dialplan contexts shipped in dialplan/
CONTEXT_ROBOT = "ivr-robot"
CONTEXT_OPERATOR = "ivr-operator"  # click-to-call: rings the operator, then dials the subscriber
OPERATOR_TARGET = "IVR_TARGET"  # number the operator leg dials after answer
