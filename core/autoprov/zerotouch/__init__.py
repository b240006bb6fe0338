"""Zero touch: what points new phones at this server (DHCP) and what keeps Asterisk in step with it."""
