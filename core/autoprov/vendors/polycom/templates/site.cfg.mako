<%include file="_header.mako"/>\
<% s = settings %>\
<site>
  <voIpProt voIpProt.server.1.address="${s.sip.server}" voIpProt.server.1.port="${s.sip.port}" voIpProt.server.1.transport="${s.sip.transport}" voIpProt.server.1.expires="${s.sip.expires}"/>
  <tcpIpApp tcpIpApp.sntp.address="${s.time.sntp_server}"\
% for key, value in time_params:
 ${key | n}="${value}"\
% endfor
/>
  <prov prov.polling.enabled="${1 if s.polling.enabled else 0}" prov.polling.mode="${s.polling.mode}" prov.polling.period="${s.polling.period}" prov.polling.time="${s.polling.time}" prov.polling.timeRandomEnd="${s.polling.time_random_end}"/>
% if s.site_params:
  <params\
% for key, value in sorted(s.site_params.items()):
 ${key}="${value}"\
% endfor
/>
% endif
</site>
