// Package config defines tenantproxy's configuration file: a plain Config struct whose fields document
// their defaults, Load to read a YAML file, and Validate to check everything once before the proxy starts.
// Nothing here holds state; the proxy receives a validated *Config.
package config
