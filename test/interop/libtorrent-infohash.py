"""Prints the v1 infohash libtorrent (Debian's python3-libtorrent) computes for a single file, and the v1
infohash it reads from an existing .torrent, one per line.

usage: /usr/bin/python3 libtorrent-infohash.py FILE PIECE_LENGTH PRIVATE(0|1) TORRENT
The file's basename is the torrent's name, so FILE must be named as the torrent's info.name.
"""
import hashlib
import os
import sys

import libtorrent as lt

path, piece_length, private, torrent = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1', sys.argv[4]

fs = lt.file_storage()
lt.add_files(fs, path)
# libtorrent 2 makes hybrid v1+v2 torrents by default, whose info dictionary (and so v1 infohash) differs:
# a v1 torrent is what create-torrent makes.
ct = lt.create_torrent(fs, piece_length, lt.create_torrent.v1_only)
ct.set_priv(private)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
made = ct.generate()
print(hashlib.sha1(lt.bencode(made[b'info'])).hexdigest())
print(str(lt.torrent_info(torrent).info_hashes().v1))
