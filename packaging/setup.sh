# Shared by the .deb and .rpm maintainer scripts (inlined into them at build time): the system user,
# the directories, and the live agent config, created only when missing so that an edited config
# survives every upgrade without a prompt (it is not a conffile).
rookery_setup() {
  systemd-sysusers rookery.conf
  install -d -m 0755 /etc/rookery /var/lib/rookery
  install -d -m 0750 /var/lib/rookery/agent
  install -d -m 0750 -o rookery -g rookery /var/lib/rookery/server
  if [ ! -e /etc/rookery/agent.yaml ]; then
    install -m 0644 /usr/share/rookery/agent.yaml /etc/rookery/agent.yaml
  fi
}
