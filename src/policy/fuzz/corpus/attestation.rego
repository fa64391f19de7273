# Attestation (appraisal) policy in the style of Trustee's default CPU policy: computes the
# AR4SI trustworthiness vector from verified claims of sample, TDX, SNP or SGX evidence.
package policy

import rego.v1

# AR4SI values: 2/3 affirming, 32-96 warning/contraindicated, 97 not recognised.
default executables := 33

default hardware := 97

default configuration := 36

default file_system := 0

default runtime_opaque := 0

default storage_opaque := 0

default sourced_data := 0

default instance_identity := 0

##### sample
executables := 3 if {
	input.sample.launch_digest in query_reference_value("launch_digest")
}

hardware := 2 if {
	input.sample.svn in query_reference_value("svn")
	input.sample.platform_version.major == query_reference_value("major_version")
	input.sample.platform_version.minor >= query_reference_value("minimum_minor_version")
}

##### TDX
executables := 3 if {
	input.tdx.quote.body.rtmr_1 in query_reference_value("rtmr_1")
	input.tdx.quote.body.rtmr_2 in query_reference_value("rtmr_2")
}

hardware := 2 if {
	input.tdx.quote.header.tee_type == "81000000"
	input.tdx.quote.header.vendor_id == "939a7233f79c4ca9940a0db3957f0607"
	input.tdx.quote.body.mr_seam in query_reference_value("mr_seam")
	input.tdx.quote.body.tcb_svn in query_reference_value("tcb_svn")
	input.tdx.quote.body.mr_td in query_reference_value("mr_td")
}

configuration := 2 if {
	input.tdx.quote.body.xfam in query_reference_value("xfam")
	not tdx_debug
}

tdx_debug if {
	td_attributes := hex.decode(input.tdx.quote.body.td_attributes)
	startswith(td_attributes, "\u0001")
}

##### SNP
executables := 3 if {
	input.snp.measurement in query_reference_value("snp_launch_measurement")
}

hardware := 2 if {
	input.snp.reported_tcb_bootloader in query_reference_value("snp_bootloader")
	input.snp.reported_tcb_microcode in query_reference_value("snp_microcode")
	input.snp.reported_tcb_snp in query_reference_value("snp_snp_svn")
	input.snp.reported_tcb_tee in query_reference_value("snp_tee_svn")
}

configuration := 2 if {
	input.snp.policy_debug_allowed == 0
	input.snp.policy_migrate_ma == 0
	input.snp.platform_smt_enabled in query_reference_value("snp_smt_enabled")
	input.snp.policy_abi_major in query_reference_value("snp_guest_abi_major")
}

# Debugging disabled but the platform configuration is not a known one.
else := 3 if {
	input.snp.policy_debug_allowed == 0
	input.snp.policy_migrate_ma == 0
}

##### SGX
executables := 3 if {
	input.sgx.body.mr_enclave in query_reference_value("mr_enclave")
	input.sgx.body.mr_signer in query_reference_value("mr_signer")
}

hardware := 2 if {
	input.sgx.body.isv_svn >= min_isv_svn
	every status in sgx_tcb_statuses {
		status in {"UpToDate", "SWHardeningNeeded"}
	}
}

min_isv_svn := min(query_reference_value("sgx_min_isv_svn"))

sgx_tcb_statuses := [s | some s in input.sgx.tcb_status]

configuration := 2 if {
	input.sgx.body.attributes.debug == false
}

##### result
trust_claims := {
	"executables": executables,
	"hardware": hardware,
	"configuration": configuration,
	"file-system": file_system,
	"runtime-opaque": runtime_opaque,
	"storage-opaque": storage_opaque,
	"sourced-data": sourced_data,
	"instance-identity": instance_identity,
}
