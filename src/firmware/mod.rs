//! Tables the machine generates for its guests: ACPI (RSDP, RSDT, FADT, FACS, MADT,
//! DSDT) and the Intel MultiProcessor table. Direct kernel boot copies them into RAM;
//! firmware receives the ACPI tables through fw_cfg.

pub mod acpi;
pub mod aml;
