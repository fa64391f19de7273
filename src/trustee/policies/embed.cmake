# Generates a .cpp that holds the shipped policies as string constants.
# Called with -DOUT=... -DATTESTATION=... -DDEVELOPMENT=... -DRESOURCE=...
file(READ ${ATTESTATION} attestation)
file(READ ${DEVELOPMENT} development)
file(READ ${RESOURCE} resource)
file(WRITE ${OUT} "// Generated from src/trustee/policies/*.rego by embed.cmake; do not edit.\n"
  "#include \"trustee/as/attestation_service.h\"\n"
  "namespace coffer::trustee::as {\n"
  "std::string_view default_attestation_policy() {\n  static constexpr char kText[] = R\"rego(${attestation})rego\";\n  return kText;\n}\n"
  "std::string_view development_attestation_policy() {\n  static constexpr char kText[] = R\"rego(${development})rego\";\n  return kText;\n}\n"
  "std::string_view default_resource_policy() {\n  static constexpr char kText[] = R\"rego(${resource})rego\";\n  return kText;\n}\n"
  "}  // namespace coffer::trustee::as\n")
