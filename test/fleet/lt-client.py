"""Downloads one torrent with libtorrent (Debian's python3-libtorrent), creates DONE_FILE when it has every
piece (its mtime is the completion time), then keeps seeding until killed.

usage: /usr/bin/python3 lt-client.py TORRENT SAVE_DIR ADDRESS:PORT DONE_FILE
"""
import sys
import time

import libtorrent as lt

torrent, save_dir, listen, done_file = sys.argv[1:5]
session = lt.session({
    # The host's own address only: a loopback listener would also announce, and fail, from 127.0.0.1.
    'listen_interfaces': listen,
    # Peers come from the tracker only, over TCP, as for rookery.
    'enable_dht': False,
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'enable_outgoing_utp': False,
    'enable_incoming_utp': False,
    # Tracker errors are printed (the bench counts them): a swarm whose announces fail is not a swarm.
    'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.tracker_notification,
})
handle = session.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save_dir})
def print_tracker_errors():
    for alert in session.pop_alerts():
        if isinstance(alert, (lt.tracker_error_alert, lt.tracker_warning_alert)):
            print(f'tracker error: {alert.message()}', flush=True)


while not handle.status().is_seeding:
    print_tracker_errors()
    time.sleep(0.05)
open(done_file, 'w').close()
print(f'complete: {handle.status().total_payload_download} payload bytes', flush=True)
while True:
    print_tracker_errors()
    time.sleep(1)
