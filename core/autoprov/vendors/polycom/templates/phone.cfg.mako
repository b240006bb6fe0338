<%include file="_header.mako"/>\
<%doc>
  Holds SIP passwords (reg.N.auth.password): served only to clients the [http] access rules allow.
  A model adds its own settings by overriding the block below in its templates/phone.cfg.mako:
  <%inherit file="/templates/phone.cfg.mako"/> then <%block name="model_settings">...</%block>.
</%doc>\
<phone mac="${phone.mac}">
% for line in phone.lines:
<% n = line.index %>\
  <reg reg.${n}.displayName="${line.display_name}" reg.${n}.address="${line.user_id}" reg.${n}.label="${line.label}" reg.${n}.type="private" reg.${n}.auth.userId="${line.user_id}" reg.${n}.auth.password="${line.secret}" reg.${n}.server.1.address="${line.server}" reg.${n}.server.1.port="${line.port}" reg.${n}.server.1.transport="${line.transport}" reg.${n}.server.1.expires="${line.expires}" reg.${n}.server.1.register="1"/>
% if line.mailbox:
  <msg msg.mwi.${n}.subscribe="${line.mailbox}" msg.mwi.${n}.callBackMode="registration"/>
% endif
% endfor
% if time_params:
  <tcpIpApp\
% for key, value in time_params:
 ${key | n}="${value}"\
% endfor
/>
% endif
% if login_params:
<%doc> The phone's provisioning login ([access] credentials): stored by the phone, sent from its next request. </%doc>\
  <device\
% for key, value in login_params.items():
 ${key | n}="${value}"\
% endfor
/>
% endif
<%block name="model_settings"/>\
</phone>
