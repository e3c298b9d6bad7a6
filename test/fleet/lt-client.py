"""Downloads one torrent with libtorrent (Debian's python3-libtorrent), creates DONE_FILE when it has every
piece (its mtime is the completion time), then keeps seeding until killed.

usage: /usr/bin/python3 lt-client.py TORRENT SAVE_DIR PORT DONE_FILE
"""
import sys
import time

import libtorrent as lt

torrent, save_dir, port, done_file = sys.argv[1:5]
session = lt.session({
    'listen_interfaces': f'0.0.0.0:{port}',
    # Peers come from the tracker only, over TCP, as for rookery.
    'enable_dht': False,
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'enable_outgoing_utp': False,
    'enable_incoming_utp': False,
    'alert_mask': 0,
})
handle = session.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save_dir})
while not handle.status().is_seeding:
    time.sleep(0.05)
open(done_file, 'w').close()
print(f'complete: {handle.status().total_payload_download} payload bytes', flush=True)
while True:
    time.sleep(3600)
