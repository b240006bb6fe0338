<?xml version="1.0" encoding="UTF-8"?>
<YealinkIPPhoneDirectory>
% for name, number in items:
  <DirectoryEntry>
    <Name>${name | n, xml_attr}</Name>
    <Telephone>${number | n, xml_attr}</Telephone>
  </DirectoryEntry>
% endfor
</YealinkIPPhoneDirectory>
