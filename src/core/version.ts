/** The software version nodes advertise and `meshwork --version` prints. */
export const VERSION = '0.1.0'
