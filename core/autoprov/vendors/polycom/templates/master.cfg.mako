<%include file="_header.mako"/>\
<APPLICATION APP_FILE_PATH="${model.app_image}" CONFIG_FILES="${", ".join(config_files)}" MISC_FILES="" LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY="contacts" LICENSE_DIRECTORY=""/>
