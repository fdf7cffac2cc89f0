# Data-science keys for notebooks and gemini-cli.
virtual_key vk-erin-notebooks {
  key_sha256 = eaea1193187f8d494812e1a77827a068c144266a9877dee99932aadfe42359ea
  key_prefix = gp-rJcvcUgOw
  principal = erin@acme.com
  team = data-science
  extends = notebooks
}

virtual_key vk-frank-notebooks {
  key_sha256 = 6f1c9f6804a642f50bba80ee9ee7924e4bf302ef517a1fd547f2962fda200495
  key_prefix = gp-GJaDsLloH
  principal = frank@acme.com
  team = data-science
  extends = notebooks
}
