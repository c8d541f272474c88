"""The quickstart's server, from a Python script (docs/quickstart.md, step 4).

    python examples/quickstart.py &
    python examples/quickstart_client.py [http://127.0.0.1:5000]

Prints the server's greeting, then the three ticks it pushes.
"""

from __future__ import annotations

import sys

from flask_sente.client import Client, csrf_from_page

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"

# The channel socket wants the CSRF token of the page's session: load the page as a browser
# would, and send its session cookie along.
token, web = csrf_from_page(base + "/")
with Client(base + "/chsk", csrf_token=token, cookies=web) as chsk:
    print(chsk.request(["demo/hello", {"name": "python"}], timeout=5))
    ticks = []
    while len(ticks) < 3:
        msg = chsk.next_event(timeout=5)  # chsk/state, chsk/handshake, then the pushes
        if msg is None:
            sys.exit(f"no push within 5 s; got {ticks}")
        if msg.id == "demo/tick":
            ticks.append(msg.data)
    print(ticks)  # [1, 2, 3]
