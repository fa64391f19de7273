# coffer default attestation policy (policy id "default_cpu").
#
# Input: the verified claims keyed by TEE ("sample", "tdx", "snp", "sgx"), plus
# "runtime_data_claims" and "init_data_claims". Output: AR4SI trustworthiness claims
# (draft-ietf-rats-ar4si): 0 = no claim, 2/3 = affirming, 32+ = warning, 96+ = contraindicated.
# The EAR status is the worst tier of the claims that are set.
#
# Reference values are registered with `coffer kbs set-reference-value NAME VALUE...` and read
# with query_reference_value(NAME). A measurement without a registered reference value is not
# trusted.
package policy

import rego.v1

default executables := 33

default hardware := 97

default configuration := 36

# ---- sample: unsigned test evidence, only accepted when explicitly enabled. Anyone can write
# it, so this policy never affirms it: its hardware claim is contraindicated, whatever the
# reference values say. Only the development policy (development_attestation.rego) affirms it.
hardware := 97 if input.sample

# ---- Intel DCAP (TDX, SGX): only a full verification counts - TCB info, QE identity and both
# CRLs (root CA and PCK) checked. A chain-only verification (allow_chain_only) never does.
dcap_verified(claims) if {
	claims.verification_mode == "full"
	claims.crls_checked == true
}

# ---- Intel TDX
executables := 3 if {
	input.tdx
	input.tdx.quote.body.mr_td in query_reference_value("tdx.mr_td")
	input.tdx.quote.body.rtmr_0 in query_reference_value("tdx.rtmr_0")
	input.tdx.quote.body.rtmr_1 in query_reference_value("tdx.rtmr_1")
	input.tdx.quote.body.rtmr_2 in query_reference_value("tdx.rtmr_2")
}

# Only a chain anchored at Intel's real root ("intel") with an up-to-date TCB is genuine,
# current hardware; any other configured root (the simulated TEE's) never is.
hardware := 2 if {
	input.tdx.tee_root == "intel"
	dcap_verified(input.tdx)
	input.tdx.tcb_status == "UpToDate"
}

hardware := 32 if {
	input.tdx.tee_root == "intel"
	dcap_verified(input.tdx)
	input.tdx.tcb_status in {"SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}
}

# Debug TDs can be read by the host.
configuration := 2 if {
	input.tdx.td_attributes.debug == false
	not init_data_refused(input.tdx.quote.body.mr_config_id, "tdx.mr_config_id")
}

# ---- AMD SEV-SNP. Hardware is affirmed only when AMD's CRL was checked (the ASK/ASVK is not
# revoked), or when the trustee's configuration explicitly accepts unchecked revocation
# ([attestation_service.verifier.snp] allow_unchecked_revocation = true).
snp_revocation_ok(claims) if claims.crl_checked == true

snp_revocation_ok(claims) if claims.unchecked_revocation_allowed == true

executables := 3 if {
	input.snp
	input.snp.measurement in query_reference_value("snp.measurement")
}

hardware := 2 if {
	input.snp.tee_root == "amd"
	snp_revocation_ok(input.snp)
	to_number(input.snp.reported_tcb_bootloader) >= min_svn("snp.min_bootloader_svn")
	to_number(input.snp.reported_tcb_tee) >= min_svn("snp.min_tee_svn")
	to_number(input.snp.reported_tcb_snp) >= min_svn("snp.min_snp_svn")
	to_number(input.snp.reported_tcb_microcode) >= min_svn("snp.min_microcode_svn")
}

configuration := 2 if {
	input.snp.policy_debug_allowed == "false"
	not init_data_refused(input.snp.init_data, "snp.host_data")
	input.snp.policy_migrate_ma == "false"
	input.snp.vmpl == 0
}

# ---- Intel SGX
executables := 3 if {
	input.sgx
	input.sgx.body.mr_enclave in query_reference_value("sgx.mr_enclave")
	input.sgx.body.mr_signer in query_reference_value("sgx.mr_signer")
}

hardware := 2 if {
	input.sgx.tee_root == "intel"
	dcap_verified(input.sgx)
	input.sgx.tcb_status == "UpToDate"
}

configuration := 2 if {
	input.sgx.debug == false
}

# The minimum SVN registered under `name`, or 0 when none is.
min_svn(name) := v if {
	values := query_reference_value(name)
	count(values) > 0
	v := to_number(values[0])
} else := 0

# ---- Why a claim is not affirming, in words: the attestation service records these in the
# EAR ("ear.veraison.policy-claims") and the KBS quotes them in a 403 PolicyDeny.
reasons := {
	"executables": executables_reasons,
	"hardware": hardware_reasons,
	"configuration": configuration_reasons,
}

registered(value, name) if value in query_reference_value(name)

# Init-data (MRCONFIGID / HOST_DATA): when reference values name it (`coffer sim measure
# --init-data` and `coffer enclave measure --init-data` register tdx.mr_config_id and
# snp.host_data), the TEE's must be one of them: the same image launched with other init-data
# (another agent policy, another trustee, other registries) is not the approved configuration.
init_data_refused(value, name) if {
	count(query_reference_value(name)) > 0
	not registered(value, name)
}

not_registered(name) := sprintf("%s is not among the registered reference values", [name])

executables_reasons contains not_registered("tdx.mr_td") if {
	input.tdx
	not registered(input.tdx.quote.body.mr_td, "tdx.mr_td")
}

executables_reasons contains not_registered(sprintf("tdx.rtmr_%d", [i])) if {
	input.tdx
	some i in [0, 1, 2]
	not registered(input.tdx.quote.body[sprintf("rtmr_%d", [i])], sprintf("tdx.rtmr_%d", [i]))
}

executables_reasons contains not_registered("snp.measurement") if {
	input.snp
	not registered(input.snp.measurement, "snp.measurement")
}

executables_reasons contains not_registered("sgx.mr_enclave") if {
	input.sgx
	not registered(input.sgx.body.mr_enclave, "sgx.mr_enclave")
}

executables_reasons contains not_registered("sgx.mr_signer") if {
	input.sgx
	not registered(input.sgx.body.mr_signer, "sgx.mr_signer")
}

executables_reasons contains "no evidence of a known TEE (tdx, snp, sgx, sample)" if {
	not input.tdx
	not input.snp
	not input.sgx
	not input.sample
}

hardware_reasons contains "no evidence of a known TEE (tdx, snp, sgx, sample)" if {
	not input.tdx
	not input.snp
	not input.sgx
	not input.sample
}

hardware_reasons contains sprintf("%s.verification_mode is %v and CRLs checked is %v: only a full DCAP verification with both CRLs counts", [tee, input[tee].verification_mode, object.get(input[tee], "crls_checked", false)]) if {
	some tee in ["tdx", "sgx"]
	input[tee]
	not dcap_verified(input[tee])
}

hardware_reasons contains sprintf("%s.tcb_status is %v", [tee, input[tee].tcb_status]) if {
	some tee in ["tdx", "sgx"]
	input[tee]
	input[tee].tcb_status != "UpToDate"
}

hardware_reasons contains "snp: AMD's CRL was not checked (configure crl_dir)" if {
	input.snp
	not snp_revocation_ok(input.snp)
}

configuration_reasons contains "tdx.mr_config_id (the init-data) is not among the registered reference values" if {
	input.tdx
	init_data_refused(input.tdx.quote.body.mr_config_id, "tdx.mr_config_id")
}

configuration_reasons contains "snp.host_data (the init-data) is not among the registered reference values" if {
	input.snp
	init_data_refused(input.snp.init_data, "snp.host_data")
}

configuration_reasons contains "tdx.td_attributes.debug is true: the host can read a debug TD" if {
	input.tdx.td_attributes.debug == true
}

configuration_reasons contains "sgx.debug is true: the host can read a debug enclave" if {
	input.sgx.debug == true
}

configuration_reasons contains "snp policy allows debugging or a migration agent, or vmpl is not 0" if {
	input.snp
	not snp_config_ok(input.snp)
}

snp_config_ok(claims) if {
	claims.policy_debug_allowed == "false"
	claims.policy_migrate_ma == "false"
	claims.vmpl == 0
}

hardware_reasons contains sprintf("%s.tee_root is %v: this policy counts only the vendor's root as hardware", [tee, input[tee].tee_root]) if {
	some tee, vendor in {"tdx": "intel", "sgx": "intel", "snp": "amd"}
	input[tee]
	input[tee].tee_root != vendor
}

hardware_reasons contains "sample evidence is unsigned: this policy never affirms it" if input.sample
