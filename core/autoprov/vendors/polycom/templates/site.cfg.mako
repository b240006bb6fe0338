<%include file="_header.mako"/>\
<% s = settings %>\
<site>
  <voIpProt voIpProt.server.1.address="${s.sip.server}" voIpProt.server.1.port="${s.sip.port}" voIpProt.server.1.transport="${s.sip.transport}" voIpProt.server.1.expires="${s.sip.expires}"/>
  <tcpIpApp tcpIpApp.sntp.address="${s.time.sntp_server}"\
% for key, value in time_params:
 ${key | n}="${value}"\
% endfor
/>
  <prov\
% for key, value in polling:
 ${key | n}="${value}"\
% endfor
/>
% if s.site_params:
  <params\
% for key, value in sorted(s.site_params.items()):
 ${key}="${value}"\
% endfor
/>
% endif
</site>
