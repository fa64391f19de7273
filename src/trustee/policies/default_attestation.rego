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
