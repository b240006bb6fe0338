<%include file="_header.mako"/>\
<%doc> device.set plus each device.X.set make the phone store the value; then it reboots onto the new path.
  serverType and bootSrvUseOpt are spelled as the phone's firmware generation reads them (generations.py). </%doc>\
<device device.set="1" device.prov.serverType.set="1" device.prov.serverType="${server_type}" device.prov.serverName.set="1" device.prov.serverName="${server_name}" device.dhcp.bootSrvUseOpt.set="1" device.dhcp.bootSrvUseOpt="${boot_server}"\
% if prov_user:
 device.prov.user.set="1" device.prov.user="${prov_user}" device.prov.password.set="1" device.prov.password="${prov_password}"\
% endif
/>
