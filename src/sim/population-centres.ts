/**
 * A small table of the world's large urban areas, written for the simulator from general knowledge
 * (rounded coordinates of each city centre; populations in millions, rounded, of the metropolitan
 * area). It only has to be plausible: it decides where simulated operators live, in proportion to
 * people, and so how far apart they are. Not a reference dataset.
 */
export interface PopulationCentre {
  name: string
  lat: number
  lon: number
  /** Metropolitan population, millions (rounded). */
  millions: number
}

/** Population centres, grouped by continent; the order is part of the seeded draw, keep it stable. */
export const POPULATION_CENTRES: readonly PopulationCentre[] = Object.freeze([
  // Asia
  { name: 'Tokyo', lat: 35.68, lon: 139.69, millions: 37 },
  { name: 'Delhi', lat: 28.61, lon: 77.21, millions: 31 },
  { name: 'Shanghai', lat: 31.23, lon: 121.47, millions: 27 },
  { name: 'Dhaka', lat: 23.81, lon: 90.41, millions: 22 },
  { name: 'Beijing', lat: 39.9, lon: 116.41, millions: 21 },
  { name: 'Mumbai', lat: 19.08, lon: 72.88, millions: 21 },
  { name: 'Osaka', lat: 34.69, lon: 135.5, millions: 19 },
  { name: 'Karachi', lat: 24.86, lon: 67.01, millions: 16 },
  { name: 'Chongqing', lat: 29.56, lon: 106.55, millions: 16 },
  { name: 'Kolkata', lat: 22.57, lon: 88.36, millions: 15 },
  { name: 'Manila', lat: 14.6, lon: 120.98, millions: 14 },
  { name: 'Guangzhou', lat: 23.13, lon: 113.26, millions: 14 },
  { name: 'Shenzhen', lat: 22.54, lon: 114.06, millions: 13 },
  { name: 'Bangalore', lat: 12.97, lon: 77.59, millions: 13 },
  { name: 'Jakarta', lat: -6.21, lon: 106.85, millions: 11 },
  { name: 'Chennai', lat: 13.08, lon: 80.27, millions: 11 },
  { name: 'Lahore', lat: 31.55, lon: 74.34, millions: 13 },
  { name: 'Seoul', lat: 37.57, lon: 126.98, millions: 10 },
  { name: 'Bangkok', lat: 13.76, lon: 100.5, millions: 11 },
  { name: 'Hyderabad', lat: 17.39, lon: 78.49, millions: 10 },
  { name: 'Ho Chi Minh City', lat: 10.82, lon: 106.63, millions: 9 },
  { name: 'Tehran', lat: 35.69, lon: 51.39, millions: 9 },
  { name: 'Hong Kong', lat: 22.32, lon: 114.17, millions: 7 },
  { name: 'Kuala Lumpur', lat: 3.14, lon: 101.69, millions: 8 },
  { name: 'Riyadh', lat: 24.71, lon: 46.68, millions: 7 },
  { name: 'Singapore', lat: 1.35, lon: 103.82, millions: 6 },
  { name: 'Taipei', lat: 25.03, lon: 121.57, millions: 7 },
  // Europe
  { name: 'Istanbul', lat: 41.01, lon: 28.98, millions: 15 },
  { name: 'Moscow', lat: 55.76, lon: 37.62, millions: 12 },
  { name: 'Paris', lat: 48.86, lon: 2.35, millions: 11 },
  { name: 'London', lat: 51.51, lon: -0.13, millions: 9 },
  { name: 'Madrid', lat: 40.42, lon: -3.7, millions: 7 },
  { name: 'Rhine-Ruhr', lat: 51.45, lon: 7.01, millions: 10 },
  { name: 'Milan', lat: 45.46, lon: 9.19, millions: 5 },
  { name: 'Berlin', lat: 52.52, lon: 13.4, millions: 5 },
  { name: 'Barcelona', lat: 41.39, lon: 2.17, millions: 5 },
  { name: 'Warsaw', lat: 52.23, lon: 21.01, millions: 3 },
  { name: 'Stockholm', lat: 59.33, lon: 18.07, millions: 2 },
  // Africa
  { name: 'Cairo', lat: 30.04, lon: 31.24, millions: 21 },
  { name: 'Lagos', lat: 6.52, lon: 3.38, millions: 15 },
  { name: 'Kinshasa', lat: -4.44, lon: 15.27, millions: 15 },
  { name: 'Luanda', lat: -8.84, lon: 13.23, millions: 9 },
  { name: 'Johannesburg', lat: -26.2, lon: 28.05, millions: 6 },
  { name: 'Nairobi', lat: -1.29, lon: 36.82, millions: 5 },
  { name: 'Addis Ababa', lat: 9.03, lon: 38.74, millions: 5 },
  // Americas
  { name: 'Sao Paulo', lat: -23.55, lon: -46.63, millions: 22 },
  { name: 'Mexico City', lat: 19.43, lon: -99.13, millions: 22 },
  { name: 'New York', lat: 40.71, lon: -74.01, millions: 19 },
  { name: 'Buenos Aires', lat: -34.6, lon: -58.38, millions: 15 },
  { name: 'Rio de Janeiro', lat: -22.91, lon: -43.17, millions: 13 },
  { name: 'Los Angeles', lat: 34.05, lon: -118.24, millions: 13 },
  { name: 'Bogota', lat: 4.71, lon: -74.07, millions: 11 },
  { name: 'Lima', lat: -12.05, lon: -77.04, millions: 11 },
  { name: 'Chicago', lat: 41.88, lon: -87.63, millions: 9 },
  { name: 'Santiago', lat: -33.45, lon: -70.67, millions: 7 },
  { name: 'Toronto', lat: 43.65, lon: -79.38, millions: 6 },
  { name: 'Houston', lat: 29.76, lon: -95.37, millions: 7 },
  { name: 'Dallas', lat: 32.78, lon: -96.8, millions: 8 },
  { name: 'San Francisco Bay', lat: 37.77, lon: -122.42, millions: 7 },
  // Oceania
  { name: 'Sydney', lat: -33.87, lon: 151.21, millions: 5 },
  { name: 'Melbourne', lat: -37.81, lon: 144.96, millions: 5 },
  { name: 'Auckland', lat: -36.85, lon: 174.76, millions: 2 },
])
