// rookery ships no WebRTC: swarms inside a datacenter use TCP only. webtorrent imports these names and
// only uses them when WebRTC peers are configured, which rookery never does.
module.exports = { RTCPeerConnection: undefined, RTCSessionDescription: undefined, RTCIceCandidate: undefined }
