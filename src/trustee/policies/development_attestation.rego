# coffer DEVELOPMENT attestation policy: the default policy, except that evidence anchored at a
# configured non-vendor root (the simulated TEE's, `tee_root` "simulated" or "configured") gets
# the same affirming "hardware" claim as the vendor's root. Use it with `coffer sim` on machines
# without TEE hardware; never in production - the simulated TEE proves nothing about the host.
#
# Install it as the default policy:
#   coffer kbs set-attestation-policy --file src/trustee/policies/development_attestation.rego
#
# Input, output and reference value names are those of default_attestation.rego; `coffer sim
# measure --format rvps` prints the values to register.
package policy

import rego.v1

default executables := 33

default hardware := 97

default configuration := 36

# Roots this policy treats as hardware: the vendors' and the simulated TEE's.
intel_like_roots := {"intel", "simulated", "configured"}

amd_like_roots := {"amd", "simulated", "configured"}

# ---- sample: unsigned test evidence; never a hardware claim, even here.
executables := 3 if {
	input.sample
	input.sample.svn in query_reference_value("sample.svn")
}

hardware := 0 if input.sample

configuration := 0 if input.sample

# ---- Intel DCAP (TDX, SGX): only a full verification counts - TCB info, QE identity and both
# CRLs (root CA and PCK) checked. A chain-only verification (allow_chain_only) never does.
dcap_verified(claims) if {
	claims.verification_mode == "full"
	claims.crls_checked == true
}

# ---- Intel TDX (hardware or simulated)
executables := 3 if {
	input.tdx
	input.tdx.quote.body.mr_td in query_reference_value("tdx.mr_td")
	input.tdx.quote.body.rtmr_0 in query_reference_value("tdx.rtmr_0")
	input.tdx.quote.body.rtmr_1 in query_reference_value("tdx.rtmr_1")
	input.tdx.quote.body.rtmr_2 in query_reference_value("tdx.rtmr_2")
}

hardware := 2 if {
	input.tdx.tee_root in intel_like_roots
	dcap_verified(input.tdx)
	input.tdx.tcb_status == "UpToDate"
}

hardware := 32 if {
	input.tdx.tee_root in intel_like_roots
	dcap_verified(input.tdx)
	input.tdx.tcb_status in {"SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}
}

# Debug TDs can be read by the host: contraindicated.
configuration := 2 if {
	input.tdx.td_attributes.debug == false
}

configuration := 97 if {
	input.tdx.td_attributes.debug == true
}

# ---- AMD SEV-SNP (hardware or simulated). Hardware is affirmed only when AMD's CRL was
# checked (the ASK/ASVK is not revoked), or when the trustee's configuration explicitly accepts
# unchecked revocation ([attestation_service.verifier.snp] allow_unchecked_revocation = true).
snp_revocation_ok(claims) if claims.crl_checked == true

snp_revocation_ok(claims) if claims.unchecked_revocation_allowed == true

executables := 3 if {
	input.snp
	input.snp.measurement in query_reference_value("snp.measurement")
}

hardware := 2 if {
	input.snp.tee_root in amd_like_roots
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
	input.sgx.tee_root in intel_like_roots
	dcap_verified(input.sgx)
	input.sgx.tcb_status == "UpToDate"
}

configuration := 2 if {
	input.sgx.debug == false
}

min_svn(name) := v if {
	values := query_reference_value(name)
	count(values) > 0
	v := to_number(values[0])
} else := 0
