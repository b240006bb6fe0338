<%include file="_header.mako"/>\
<%doc>
  The first file a factory-fresh phone gets (it asked the server root for 000000000000.cfg): it loads the
  device settings that move the phone to its model's path, reboots, and boots from there.
</%doc>\
<% base = model.base_path.lstrip("/") %>\
<APPLICATION APP_FILE_PATH="${base}${model.app_image}" CONFIG_FILES="${", ".join(config_files)}" MISC_FILES="" LOG_FILE_DIRECTORY="${base}logs" OVERRIDES_DIRECTORY="${base}overrides" CONTACTS_DIRECTORY="${base}contacts" LICENSE_DIRECTORY=""/>
